"""`frontend.nn`: modules, layers, losses, `functional` and `init`, shaped like torch.nn."""
from frontend.nn import functional, init
from frontend.nn.container import ModuleDict, ModuleList, ParameterList, Sequential
from frontend.nn.layers import (GELU, AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout,
                                Embedding, Flatten, Hardsigmoid, Hardswish, Identity, LayerNorm, LeakyReLU, Linear,
                                LogSoftmax, MaxPool2d, ReLU, ReLU6, Sigmoid, SiLU, Softmax, Tanh, Unflatten)
from frontend.nn.loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss,
                              SmoothL1Loss)
from frontend.nn.module import Module
from frontend.nn.parameter import Buffer, Parameter
from frontend.nn.transformer import MultiheadAttention, TransformerEncoder, TransformerEncoderLayer
from frontend.nn import utils  # noqa: E402
