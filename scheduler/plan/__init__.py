"""What the leader decides, before anything is written: the planner, a pass's decisions, the preview."""
