"""Dataset: CIFAR-100 extract, transform to PNGs/.lst/manifest, S3 staging."""
