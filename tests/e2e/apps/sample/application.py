# ruff: noqa - the developer guide's code, kept in its own style on purpose
"""The developer guide's sample application, rebuilt from the snippets in its chapters.

Runs unchanged on Panoptes: parameters from the graph, OpenCV preprocessing, a
SqueezeNet model node called with `self.call({"data": ...}, MODEL_NODE)`, top-k
labels and a box on the HDMI output, CloudWatch metrics through boto3 (guarded),
and a rotating log file in /opt/aws/panorama/logs.
"""

import json
import logging
import time
from logging.handlers import RotatingFileHandler

import boto3
import cv2
import numpy as np
from botocore.exceptions import ClientError, CredentialRetrievalError, NoCredentialsError

import panoramasdk


class Application(panoramasdk.node):
    def __init__(self):
        """Initializes the application's attributes with parameters from the interface."""
        self.MODEL_NODE = "model_node"
        self.MODEL_DIM = 224
        self.frame_num = 0
        self.epoch_frames = 20
        self.inference_time_ms = 0
        self.inference_time_max = 0
        self.frame_time_ms = 0
        self.frame_time_max = 0
        self.epoch_start = time.time()
        # Parameters
        logger.info("Getting parameters")
        self.threshold = self.inputs.threshold.get()
        self.device_id = self.inputs.device_id.get()
        self.region = self.inputs.region.get()
        self.log_level = self.inputs.log_level.get()
        logger.setLevel(self.log_level)
        # Load classes
        with open("/panorama/squeezenet_classes.json") as f:
            self.classes = json.load(f)
        try:
            self.cloudwatch = boto3.resource("cloudwatch", region_name=self.region)
        except (ClientError, CredentialRetrievalError, NoCredentialsError):
            # Deployed without an application role: no credentials for the AWS SDK.
            logger.exception("Error creating the CloudWatch client.")
            self.cloudwatch = None
        logger.info(
            "threshold %s, device %s, region %s", self.threshold, self.device_id, self.region
        )

    def process_streams(self):
        """Processes one frame of video from one or more video streams."""
        frame_start = time.time()
        self.frame_num += 1
        logger.debug(self.frame_num)
        # Loop through attached video streams
        streams = self.inputs.video_in.get()
        for stream in streams:
            if stream.is_cached:
                continue
            self.process_media(stream)
        self.outputs.video_out.put(streams)
        # Log metrics
        frame_time = (time.time() - frame_start) * 1000
        if frame_time > self.frame_time_max:
            self.frame_time_max = frame_time
        self.frame_time_ms += frame_time
        if self.frame_num % self.epoch_frames == 0:
            epoch_time = time.time() - self.epoch_start
            epoch_fps = self.epoch_frames / epoch_time
            avg_inference_time = self.inference_time_ms / self.epoch_frames / len(streams)
            max_inference_time = self.inference_time_max
            avg_frame_processing_time = self.frame_time_ms / self.epoch_frames
            max_frame_processing_time = self.frame_time_max
            logger.info(f"epoch length: {epoch_time:.3f} s ({epoch_fps:.3f} FPS)")
            logger.info(f"avg inference time: {avg_inference_time:.3f} ms")
            logger.info(f"max inference time: {max_inference_time:.3f} ms")
            logger.info(f"avg frame processing time: {avg_frame_processing_time:.3f} ms")
            logger.info(f"max frame processing time: {max_frame_processing_time:.3f} ms")
            self.inference_time_ms = 0
            self.inference_time_max = 0
            self.frame_time_ms = 0
            self.frame_time_max = 0
            self.epoch_start = time.time()
            self.put_metric_data("AverageInferenceTime", avg_inference_time)
            self.put_metric_data("AverageFrameProcessingTime", avg_frame_processing_time)

    def put_metric_data(self, metric_name, metric_value):
        """Sends a performance metric to CloudWatch."""
        namespace = "AWSPanoramaApplication"
        dimension_name = "Application Name"
        dimension_value = "aws-panorama-sample"
        try:
            metric = self.cloudwatch.Metric(namespace, metric_name)
            metric.put_data(
                Namespace=namespace,
                MetricData=[
                    {
                        "MetricName": metric_name,
                        "Value": metric_value,
                        "Unit": "Milliseconds",
                        "Dimensions": [
                            {"Name": dimension_name, "Value": dimension_value},
                            {"Name": "Device ID", "Value": self.device_id},
                        ],
                    }
                ],
            )
            logger.info("Put data for metric %s.%s", namespace, metric_name)
        except (ClientError, CredentialRetrievalError, NoCredentialsError):
            logger.warning("Couldn't put data for metric %s.%s", namespace, metric_name)
        except AttributeError:
            logger.warning("CloudWatch client is not available.")

    def process_media(self, stream):
        """Runs inference on a frame of video."""
        image_data = preprocess(stream.image, self.MODEL_DIM)
        logger.debug(f"Image data: {image_data}")
        # Run inference
        inference_start = time.time()
        inference_results = self.call({"data": image_data}, self.MODEL_NODE)
        # Log metrics
        inference_time = (time.time() - inference_start) * 1000
        if inference_time > self.inference_time_max:
            self.inference_time_max = inference_time
        self.inference_time_ms += inference_time
        # Process results (classification)
        self.process_results(inference_results, stream)

    def process_results(self, inference_results, stream):
        """Processes output tensors from a computer vision model and annotates a video frame."""
        if inference_results is None:
            logger.warning("Inference results are None.")
            return
        max_results = 5
        logger.debug(f"Inference results: {inference_results}")
        class_tuple = inference_results[0]
        enum_vals = [(i, val) for i, val in enumerate(class_tuple[0])]
        sorted_vals = sorted(enum_vals, key=lambda tup: tup[1])
        top_k = sorted_vals[::-1][:max_results]
        indexes = [tup[0] for tup in top_k]

        for j in range(max_results):
            label = "Class [%s], with probability %.3f." % (
                self.classes[indexes[j]],
                class_tuple[0][indexes[j]],
            )
            stream.add_label(label, 0.1, 0.1 + 0.1 * j)
        h, w, c = stream.image.shape
        x1, y1, x2, y2 = w * 0.6, h * 0.6, w * 0.9, h * 0.9
        stream.add_rect(x1 / w, y1 / h, x2 / w, y2 / h)


def preprocess(img, width):
    resized = cv2.resize(img, (width, width))
    mean = [0.485, 0.456, 0.406]
    std = [0.229, 0.224, 0.225]
    img = resized.astype(np.float32) / 255.0
    img_a = img[:, :, 0]
    img_b = img[:, :, 1]
    img_c = img[:, :, 2]
    # Normalize data in each channel
    img_a = (img_a - mean[0]) / std[0]
    img_b = (img_b - mean[1]) / std[1]
    img_c = (img_c - mean[2]) / std[2]
    # Put the channels back together
    x1 = [[[], [], []]]
    x1[0][0] = img_a
    x1[0][1] = img_b
    x1[0][2] = img_c
    return np.asarray(x1)


def get_logger(name=__name__, level=logging.INFO):
    logger = logging.getLogger(name)
    logger.setLevel(level)
    LOG_PATH = "/opt/aws/panorama/logs"
    handler = RotatingFileHandler(f"{LOG_PATH}/app.log", maxBytes=10000000, backupCount=1)
    formatter = logging.Formatter(
        fmt="%(asctime)s %(levelname)-8s %(message)s", datefmt="%Y-%m-%d %H:%M:%S"
    )
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    return logger


def main():
    try:
        logger.info("INITIALIZING APPLICATION")
        app = Application()
        logger.info("PROCESSING STREAMS")
        while True:
            app.process_streams()
            # turn off debug logging after 150 loops
            if logger.getEffectiveLevel() == logging.DEBUG and app.frame_num == 150:
                logger.setLevel(logging.INFO)
    except:  # noqa: E722 - the sample's own style
        logger.exception("Exception during processing loop.")


logger = get_logger(level=logging.INFO)
main()
