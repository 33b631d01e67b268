"""The clean-my-data agents: each takes the previous agent's typed frame and returns a new one."""
