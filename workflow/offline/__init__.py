"""The offline runtime: moto's Step Functions interpreter runs the real ASL, whose Lambda tasks reach a local
Lambda Invoke API running the real handlers; a forwarder plays EventBridge; a stand-in endpoint for tests."""
