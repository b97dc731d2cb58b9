"""The serving peer of `make bench`: the deployment a Python user would build.
FastAPI + uvicorn, PIL to decode the PNG, PyTorch for the model (784-64-10,
weights saved by torch_peer.py --save), the same JSON answer as mnistd's.

  MODEL_PT=bench.pt uvicorn serve_fastapi:app --port 18080 [--workers 2]
"""
import io
import os

import numpy as np
import torch
from fastapi import FastAPI, File, UploadFile
from PIL import Image

from torch_peer import NETS

torch.set_num_threads(1)
model = NETS["mlp64"][0]()
model.load_state_dict(torch.load(os.environ.get("MODEL_PT", "bench.pt")))
model.eval()
app = FastAPI()


@app.post("/predict")
async def predict(image: UploadFile = File(...)):
    img = Image.open(io.BytesIO(await image.read())).convert("L")
    x = torch.from_numpy(np.asarray(img, dtype=np.float32).reshape(1, 784) / 255.0)
    with torch.no_grad():
        p = torch.softmax(model(x), dim=1)[0]
    return {"prediction": int(p.argmax()), "probabilities": p.tolist()}
