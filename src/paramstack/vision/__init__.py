"""Image classification: request-path preprocessing and the project's own demo digits model.

`preprocess` is imported by the server and depends only on numpy and Pillow; the training
modules (`digits`, `train_digits`) pull in scikit-learn and torch and are never imported there.
"""
