"""A tiny character model trained with Lightning on a few lines of text (CPU, seconds)."""
import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

text = open("text.txt", encoding="utf-8").read()
chars = sorted(set(text))
ids = torch.tensor([chars.index(c) for c in text])
block = 32
windows = ids[: len(ids) // (block + 1) * (block + 1)].view(-1, block + 1)
train, held = windows[:-8], windows[-8:]


class CharModel(L.LightningModule):
    def __init__(self, vocab_size: int, width: int = 64, learning_rate: float = 3e-3, batch_size: int = 16):
        super().__init__()
        self.save_hyperparameters()
        self.embed = torch.nn.Embedding(vocab_size, width)
        self.head = torch.nn.Linear(width, vocab_size)

    def loss(self, batch):
        (window,) = batch
        logits = self.head(self.embed(window[:, :-1]))
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), window[:, 1:].flatten())

    def training_step(self, batch, batch_idx):
        loss = self.loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.loss(batch))

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.learning_rate)


model = CharModel(len(chars))
trainer = L.Trainer(max_epochs=4, accelerator="cpu", logger=CSVLogger("logs", name="char"), log_every_n_steps=2)
trainer.fit(model, DataLoader(TensorDataset(train), batch_size=16, shuffle=True),
            DataLoader(TensorDataset(held), batch_size=16))
