"""Panoptes: a self-hosted edge computer-vision platform that runs AWS Panorama apps."""

__version__ = "0.1.0"
