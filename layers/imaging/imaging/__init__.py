"""The one image preprocessing of the project, shared with the Lambdas through the ImagingLayer SAM layer."""
