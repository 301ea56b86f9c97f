"""The benchmark wizard (``BenchmarkWizard``), opened from the window's File menu."""

from edgeapp.ui.wizard.wizard import BenchmarkWizard

__all__ = ["BenchmarkWizard"]
