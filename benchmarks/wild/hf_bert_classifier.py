"""A BERT sentence classifier: our module around transformers' BertModel, with a config object."""
import torch
import torch.nn as nn
from transformers import BertConfig, BertModel


class BertClassifier(nn.Module):
    def __init__(self, config: BertConfig, num_labels: int = 3):
        super().__init__()
        self.bert = BertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, num_labels)

    def forward(self, input_ids, attention_mask=None):
        pooled = self.bert(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        return self.classifier(self.dropout(pooled))


config = BertConfig(vocab_size=2000, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                    intermediate_size=256, max_position_embeddings=128)


def example_inputs():
    return torch.randint(0, 2000, (8, 32))
