"""Build and check tools for CI: CloudFormation views of the template, the package layering rule."""
