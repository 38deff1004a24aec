"""A lab of boards: plans (devices x models x backends x batches x precisions) run in parallel over many
boards, one measurement at a time per board, resumable, with live progress.

    from edgeprof.lab import Lab, Plan
    run = Lab().run(Plan(devices=["tag:family=tx2"], models=["alexnet", "resnet50"]))
"""
from .plan import Item, Plan, PlanError
from .runner import BoardProgress, Lab, LabRun

__all__ = ["BoardProgress", "Item", "Lab", "LabRun", "Plan", "PlanError"]
