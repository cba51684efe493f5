"""Fine-tune runs on frozen snapshots: LoRA or full SFT with transformers, peft and TRL."""
