"""Ultralytics YOLOv8n built from its YAML (no weights): the detection network inside YOLO()."""
import torch
from ultralytics import YOLO

yolo = YOLO("yolov8n.yaml")


def build():
    return yolo.model


def example_inputs():
    return torch.randn(2, 3, 128, 128)
