"""Training: the local PyTorch trainer and exporter, and the SageMaker training and deployment jobs."""
