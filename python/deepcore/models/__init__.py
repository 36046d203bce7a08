"""Ready-made networks with torchvision's layouts and state_dict keys (also importable as
deepcore.vision.models): LeNet-5, ResNet-18/34/50, VGG-11/13/16/19 (with or without BN); and
GPT, a GPT-2-style language model with nanoGPT's layout and state_dict keys; pretrained text
encoders from local Hugging Face directories: BertModel (transformers' keys) and
SentenceTransformer (sentence-transformers' modules.json pipelines)."""
from .bert import BertConfig, BertModel
from .gpt import GPT, GPTConfig
from .lenet import LeNet5, lenet5
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50
from .sentence_transformers import SentenceTransformer
from .vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn

__all__ = ["LeNet5", "lenet5", "ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34",
           "resnet50", "VGG", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn",
           "vgg19", "vgg19_bn", "GPT", "GPTConfig", "BertConfig", "BertModel",
           "SentenceTransformer"]
