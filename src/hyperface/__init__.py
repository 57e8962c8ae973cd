"""hyperface: multi-task face analysis (detection, landmarks, visibility, head pose, gender)."""

__version__ = "0.1.0"
