from monitoring.cli import main

main()
