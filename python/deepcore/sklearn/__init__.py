"""``deepcore.sklearn``: deepcore modules as scikit-learn estimators.

    from deepcore.sklearn import NeuralNetClassifier, NeuralNetRegressor
    clf = NeuralNetClassifier(hidden_layer_sizes=(64,), lr=1e-2, max_epochs=30, random_state=0)
    GridSearchCV(make_pipeline(StandardScaler(), clf),
                 {"neuralnetclassifier__lr": [1e-3, 1e-2]}).fit(X, y)

Both pass scikit-learn's ``check_estimator`` and work in ``Pipeline``, ``GridSearchCV`` and
``cross_val_score``. ``module`` is an ``nn.Module`` class or factory (with ``module__*``
keywords), or None for an MLP sized from the data; see ``NeuralNetBase`` for the parameters.
Needs scikit-learn >= 1.6 (``pip install 'deepcore[sklearn]'``).
"""
from ._base import NeuralNetBase, default_mlp
from ._classifier import NeuralNetClassifier
from ._regressor import NeuralNetRegressor

__all__ = ["NeuralNetBase", "NeuralNetClassifier", "NeuralNetRegressor", "default_mlp"]
