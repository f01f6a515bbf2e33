"""The `panoptes` command line. Thin: parse arguments, call a room, print."""
