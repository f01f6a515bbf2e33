"""The control plane's side of the device link (`panoptes.link`): the MQTT broker
(embedded for single-node installs), the bridge that publishes desired state and
applies device reports, and the device endpoint (mutual TLS) for assets.
"""
