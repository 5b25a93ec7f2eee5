"""Training: two-stage instruction tuning of SEAGULL models (accelerate, LoRA through peft, resumable)."""
