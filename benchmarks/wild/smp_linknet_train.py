"""A training script for Linknet (MobileNetV2 encoder): argparse at module level."""
import argparse

import torch
import segmentation_models_pytorch as smp

parser = argparse.ArgumentParser()
parser.add_argument("--encoder", default="mobilenet_v2")
parser.add_argument("--classes", type=int, default=2)
parser.add_argument("--lr", type=float, default=1e-3)
args = parser.parse_args()

model = smp.Linknet(encoder_name=args.encoder, encoder_weights=None, classes=args.classes)
optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
loss_fn = smp.losses.DiceLoss("multiclass")

if __name__ == "__main__":
    for step in range(10):
        x, y = torch.randn(2, 3, 128, 128), torch.randint(0, args.classes, (2, 128, 128))
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
