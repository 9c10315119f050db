"""pytorch-tabnet's TabNet network (the nn.Module inside TabNetClassifier), from a factory."""
import torch
from pytorch_tabnet.tab_network import TabNet


def build():
    return TabNet(input_dim=32, output_dim=2, n_d=16, n_a=16, n_steps=4, virtual_batch_size=8,
                  group_attention_matrix=torch.eye(32))
