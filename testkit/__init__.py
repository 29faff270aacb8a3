"""Test fakes and fixtures that the tests and the benchmarks both use (generated images, CIFAR-format archives)."""
