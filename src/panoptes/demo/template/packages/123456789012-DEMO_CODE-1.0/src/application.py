"""The Panoptes demo application: written against panoramasdk exactly as a Panorama app.

Each frame: box what moves (OpenCV background subtraction), classify the whole frame
with the model node (a small network with random weights, so the class is noise; the
point is the round trip through the model server), and write both on the video output.
Log lines go to /opt/aws/panorama/logs, as on an appliance.
"""

import logging
import time
from logging.handlers import RotatingFileHandler

import cv2
import numpy as np

import panoramasdk

MODEL_NODE = "model_node"
MODEL_SIZE = 224
log = logging.getLogger("demo")


class DemoApplication(panoramasdk.node):
    def __init__(self):
        self.min_area = float(self.inputs.min_area.get())
        self.subtractors = {}  # one background model per camera stream
        self.frames = 0
        self.started = time.time()
        log.info("demo application started; boxing regions above %.4f of the frame", self.min_area)

    def process_streams(self):
        streams = self.inputs.video_in.get()
        for stream in streams:
            if stream.is_cached:
                continue
            self.frames += 1
            self.box_motion(stream)
            self.label(stream)
        self.outputs.video_out.put(streams)
        if self.frames % 100 == 0:
            log.info("%d frames, %.1f fps", self.frames, self.fps())

    def box_motion(self, stream):
        image = stream.image
        height, width = image.shape[:2]
        small = cv2.resize(image, (320, max(1, 320 * height // width)))
        subtractor = self.subtractors.setdefault(
            stream.stream_id, cv2.createBackgroundSubtractorMOG2(history=200, detectShadows=False)
        )
        mask = subtractor.apply(small)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        h, w = mask.shape
        for contour in contours:
            x, y, cw, ch = cv2.boundingRect(contour)
            if cw * ch < self.min_area * w * h:
                continue
            stream.add_rect(x / w, y / h, (x + cw) / w, (y + ch) / h)

    def label(self, stream):
        blob = cv2.resize(stream.image, (MODEL_SIZE, MODEL_SIZE)).astype(np.float32) / 255.0
        blob = blob.transpose(2, 0, 1)[np.newaxis]
        started = time.time()
        (scores,) = self.call({"data": blob}, MODEL_NODE)
        inference_ms = (time.time() - started) * 1000
        top = int(np.argmax(scores))
        stream.add_label(f"Panoptes demo - {stream.stream_id}", 0.02, 0.06)
        stream.add_label(
            f"class {top} ({float(np.max(scores)):.2f})  model {inference_ms:.1f} ms  "
            f"{self.fps():.1f} fps",
            0.02,
            0.12,
        )

    def fps(self):
        return self.frames / max(1e-6, time.time() - self.started)


def main():
    handler = RotatingFileHandler(
        "/opt/aws/panorama/logs/app.log", maxBytes=10_000_000, backupCount=1
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    app = DemoApplication()
    while True:
        app.process_streams()


main()
