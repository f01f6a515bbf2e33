"""The device agent: any Linux machine becomes a Panoptes appliance.

Provisioning and identity, the link to the control plane (`panoptes.link`), the
reconciler that runs application instances with `panoptes.runtime`, the asset
cache, jobs (reboot, OTA with rollback), log shipping with an offline buffer and
inbound ports. See docs/architecture.md, "The device agent".
"""
