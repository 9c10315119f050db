"""pytorch-tabnet the README way: a scikit-learn-style TabNetClassifier (the network is built in fit())."""
import numpy as np
from pytorch_tabnet.tab_model import TabNetClassifier

clf = TabNetClassifier(n_d=16, n_a=16, n_steps=4)

if __name__ == "__main__":
    X, y = np.random.randn(256, 20).astype("float32"), np.random.randint(0, 2, 256)
    clf.fit(X, y, max_epochs=2)
