"""ECG arrhythmia pipeline: WFDB records, signal processing, beats, models, EC57 metrics, scores.

A library first: nothing here imports the gateway, and ``strip``/``scores`` import without
torch so a server (or a hospital script) can use them without the training stack.
"""
