"""The factored code of the stack: data set, preprocessing, embedding, training,
artifact store, production-data store and retraining. Every service imports it."""

__version__ = "1.0.0"
