"""panoramasdk: the AWS Panorama Application SDK, for applications run by Panoptes.

Application code imports it unchanged::

    import panoramasdk

    class Application(panoramasdk.node):
        def __init__(self):
            self.threshold = self.inputs.threshold.get()

        def process(self):
            streams = self.inputs.video_in.get()
            for stream in streams:
                out = self.call({"data": preprocess(stream.image)}, "model_node")
                stream.add_label("hello", 0.1, 0.1)
            self.outputs.video_out.put(streams)

A thin client of panoptes.runtime: frames come from shared-memory rings (no copy per
reader), inference goes to the model node's server process.
"""

from panoramasdk._media import media
from panoramasdk._node import node, port

__all__ = ["media", "node", "port"]
__version__ = "1.2.0"  # the SDK behaviour implemented (get timeout, put([]) errors, ...)
