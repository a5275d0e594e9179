#!/usr/bin/python3
"""Golden data for examples/classify.c: a PyTorch token classifier
(nn.Embedding with padding_idx -> 2-layer bidirectional nn.LSTM ->
nn.Linear on torch.cat((h_n[-2], h_n[-1]), 1)) written as one liblstm model
file with its labels (lstm.convert.torch_parts_to_bytes), sequences of
token ids of mixed lengths, one per line, and the class PyTorch gives each
(float64), with its label. classify must print expected.txt exactly.

Usage (Debian's python3 with python3-torch and python3-numpy):

    PYTHONPATH=bindings/python /usr/bin/python3 tests/parity/gen_classify_golden.py \\
        tests/parity/golden/classify

The weights are random (seeded): the test is about running a shipped file,
not about a trained model. Sequences whose top two logits are closer than
1e-3 are drawn again, so float32 rounding cannot flip an answer.
"""

import os
import sys

import torch
from torch.nn.utils.rnn import pack_sequence

from lstm import convert

V, E, H, CLASSES, LINES = 40, 8, 12, 3, 24
LABELS = ["negative", "neutral", "positive"]
SEED = 4  # a seed whose random weights give every class


def main(directory):
    os.makedirs(directory, exist_ok=True)
    torch.manual_seed(SEED)
    embedding = torch.nn.Embedding(V, E, padding_idx=0)
    lstm = torch.nn.LSTM(E, H, num_layers=2, bidirectional=True)
    linear = torch.nn.Linear(2 * H, CLASSES)
    with torch.no_grad():  # answers that depend on the sequence, not on the bias
        linear.weight.mul_(8.0)
        linear.bias.zero_()
    data = convert.torch_parts_to_bytes(
        embedding=embedding, lstm=lstm, linear=linear, head="last", loss="cross_entropy",
        metadata={"labels": "\n".join(LABELS),
                  "description": "random weights: the golden file of examples/classify.c"})
    # the reference runs the weights liblstm holds (one bias, float32 values)
    parts = convert.bytes_to_torch_parts(data)
    modules = [parts.embedding, parts.lstm, parts.linear]
    for module in modules:
        module.double()
    generator = torch.Generator().manual_seed(5)
    lines, answers, tried = [], [], []
    while min([answers.count(k) for k in range(CLASSES)]) < LINES // CLASSES:
        length = int(torch.randint(1, 16, (1,), generator=generator))
        ids = torch.randint(0, V, (length,), generator=generator)
        with torch.no_grad():
            x = parts.embedding(ids)
            _, (h_n, _) = parts.lstm(pack_sequence([x]))
            logits = parts.linear(torch.cat((h_n[-2], h_n[-1]), 1))[0]
        top = torch.topk(logits, 2).values
        if float(top[0] - top[1]) < 1e-3:
            continue
        answer = int(torch.argmax(logits))
        if answers.count(answer) < LINES // CLASSES:  # as many of each class
            lines.append(" ".join(str(int(i)) for i in ids))
            answers.append(answer)
        if len(tried) > 20000:
            raise SystemExit("classes never reached: %s" % [answers.count(k) for k in range(3)])
        tried.append(answer)
    with open(os.path.join(directory, "classifier.lstm"), "wb") as f:
        f.write(data)
    with open(os.path.join(directory, "input.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(directory, "expected.txt"), "w") as f:
        f.write("".join("%d %s\n" % (k, LABELS[k]) for k in answers))
    print("%d sequences, classes %s" % (len(lines), [answers.count(k) for k in range(CLASSES)]))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/parity/golden/classify")
