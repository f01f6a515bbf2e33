"""The demo: a small application that `panoptes up --demo` builds, publishes and deploys.

`template/` is a panorama-cli project with account 123456789012 (as the public
samples ship); `project.make_demo_project` copies it, imports it into the user's
account (import-application), adds a classifier with random weights (add-raw-model)
and packs the code (build-container), exactly the steps a developer takes.
"""
