"""Reference PyTorch code for module 5 (`m5-pytorch/cnn_torch`).

Hidden checks compare students to these (training runs started from the same weights on the
same mini-batches must end with the same parameters); tests use them as the valid baseline.
They mirror the notebook's solution cells.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import transforms

#: Fashion-MNIST training-set pixel statistics (after ``ToTensor``, values in [0, 1]).
FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530


def ref_transform() -> transforms.Compose:
    """``ToTensor`` then ``Normalize`` with the training-set statistics."""
    return transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((FASHION_MNIST_MEAN,), (FASHION_MNIST_STD,))]
    )


def ref_make_loaders(batch_size: int, n_train: int | None = None) -> tuple[DataLoader, DataLoader]:
    """Fashion-MNIST loaders: shuffled training set (optionally its first ``n_train`` images),
    test set in its fixed order."""
    from autograder.data import load_torchvision

    train_set = load_torchvision(train=True, transform=ref_transform())
    test_set = load_torchvision(train=False, transform=ref_transform())
    if n_train is not None:
        train_set = Subset(train_set, range(n_train))
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=batch_size, shuffle=False)
    return train_loader, test_loader


class RefCNN(nn.Module):
    """conv(1→8, 3, pad 1) → ReLU → maxpool 2 → conv(8→16, 3, pad 1) → ReLU → maxpool 2
    → flatten → linear(16·7·7 → 10), logits out."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class RefMyConv2d(nn.Module):
    """Convolution from scratch with ``unfold``: one matrix product per batch."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        k = 1.0 / (in_channels * kernel_size * kernel_size)
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels, kernel_size, kernel_size).uniform_(
                -(k**0.5), k**0.5
            )
        )
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-(k**0.5), k**0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        ho = (h + 2 * self.padding - self.kernel_size) // self.stride + 1
        wo = (w + 2 * self.padding - self.kernel_size) // self.stride + 1
        cols = F.unfold(
            x, self.kernel_size, padding=self.padding, stride=self.stride
        )  # (N, C·k·k, L)
        out = self.weight.view(self.out_channels, -1) @ cols  # (N, F, L)
        return out.view(n, self.out_channels, ho, wo) + self.bias.view(1, -1, 1, 1)


def ref_train_one_epoch(model, loader, optimizer, loss_fn, device) -> float:
    """One epoch of mini-batch training; returns the mean loss per sample over the epoch."""
    model.train()
    total, count = 0.0, 0
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(X)
        count += len(X)
    return total / count


def ref_evaluate(model, loader, loss_fn, device) -> tuple[float, float]:
    """Mean loss per sample and accuracy (fraction in [0, 1]) over ``loader``, weights untouched."""
    model.eval()
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            logits = model(X)
            total += loss_fn(logits, y).item() * len(X)
            correct += (logits.argmax(dim=1) == y).sum().item()
            count += len(X)
    return total / count, correct / count


def ref_predict(model, x, device) -> torch.Tensor:
    """Class ids (N,) predicted for a batch of images ``x``."""
    model.eval()
    with torch.no_grad():
        return model(x.to(device)).argmax(dim=1).cpu()
