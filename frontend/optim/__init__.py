"""`frontend.optim`: SGD, Adam, AdamW and learning-rate schedulers, shaped like torch.optim.

    >>> opt = optim.Adam(model.parameters(), lr=1e-3)
    >>> opt.zero_grad(); loss.backward(); opt.step()
"""
from frontend.optim import lr_scheduler
from frontend.optim.adam import Adam, AdamW
from frontend.optim.optimizer import Optimizer
from frontend.optim.sgd import SGD

__all__ = ["Adam", "AdamW", "Optimizer", "SGD", "lr_scheduler"]
