"""timm ResNet-18 for CIFAR-10: module-level model + optimizer, training under __main__."""
import timm
import torch
import torch.nn.functional as F

model = timm.create_model("resnet18", pretrained=False, num_classes=10)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

if __name__ == "__main__":
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
