"""A LightningModule image classifier with save_hyperparameters() and a no-argument constructor."""
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F


class LitCNN(L.LightningModule):
    def __init__(self, channels: int = 32, num_classes: int = 10, lr: float = 1e-3):
        super().__init__()
        self.save_hyperparameters()
        self.features = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.BatchNorm2d(2 * channels), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * channels, 4 * channels, 3, padding=1), nn.BatchNorm2d(4 * channels), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(4 * channels, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def example_inputs():
    return torch.randn(8, 3, 32, 32)
