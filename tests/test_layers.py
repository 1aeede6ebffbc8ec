"""Couplings by string, which no import linter sees: a lower layer naming a higher app's label (a
permission "attendance.view_…", a model "students.Student", a dotted path, a task name) or one of its
permission codenames, and a signal connected to another app's model by label."""

import ast
import re
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parent.parent
# Bottom to top (STYLE.md): each may use those before it, never those after.
LAYERS = [
    ("core", "campusiq/core"),
    ("accounts", "accounts"),
    ("students", "students"),
    ("attendance", "attendance"),
    ("predictions", "predictions"),
    ("portal", "portal"),
]


def _modules(folder: str) -> list[Path]:
    return [path for path in sorted((ROOT / folder).rglob("*.py")) if "migrations" not in path.parts]


def _strings(tree: ast.AST) -> list[ast.Constant]:
    """The string literals of a module (f-strings' literal parts too), docstrings left out: prose may
    say what sits above."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def _codenames(label: str) -> set[str]:
    try:
        models = apps.get_app_config(label).get_models()
    except LookupError:  # a layer not written yet
        return set()
    return {f"{action}_{model._meta.model_name}" for model in models for action in ("add", "change", "delete", "view")}


@pytest.mark.parametrize(("label", "folder"), LAYERS[:-1], ids=[label for label, _ in LAYERS[:-1]])
def test_a_lower_layer_names_no_higher_app(label, folder):
    higher = [higher_label for higher_label, _ in LAYERS[LAYERS.index((label, folder)) + 1 :]]
    dotted = re.compile(rf"^({'|'.join(higher)})\.(\w|$)")
    codenames = set().union(*(_codenames(higher_label) for higher_label in higher))
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}"
        for path in _modules(folder)
        for node in _strings(ast.parse(path.read_text()))
        if dotted.match(node.value) or node.value in codenames
    ]
    assert not found, "a higher app named by string (register from that app instead):\n" + "\n".join(found)


@pytest.mark.parametrize(("label", "folder"), LAYERS, ids=[label for label, _ in LAYERS])
def test_signals_by_label_are_on_the_apps_own_models(label, folder):
    found = []
    for path in _modules(folder):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect":
                senders = [keyword.value for keyword in node.keywords if keyword.arg == "sender"]
                for sender in senders:
                    if isinstance(sender, ast.Constant) and str(sender.value).split(".")[0] != label:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: sender={sender.value!r}")
    assert not found, "a signal on another app's model, by label (that app connects it):\n" + "\n".join(found)
