"""MONAI SegResNet (2-d) with a training loop under __main__."""
import torch
import torch.nn as nn
from monai.losses import DiceLoss
from monai.networks.nets import SegResNet


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = SegResNet(spatial_dims=2, init_filters=16, in_channels=1, out_channels=2,
                               blocks_down=(1, 2, 2, 4), blocks_up=(1, 1, 1))

    def forward(self, x):
        return self.model(x)


if __name__ == "__main__":
    net = Net()
    loss_fn = DiceLoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    x, y = torch.randn(2, 1, 64, 64), torch.randint(0, 2, (2, 1, 64, 64))
    loss = loss_fn(net(x), y)
    loss.backward(); opt.step()
