"""The SEAGULL model: config, vision towers, mask-based feature extractor, multimodal causal LM, the
input side (processor) and the output side (scorer)."""

from transformers import AutoModelForCausalLM

from .checkpoints import load_released
from .config import NAMED_CONFIGS, SeagullConfig, get_config, get_named_config, list_configs
from .processor import SeagullProcessor
from .prompting import EncodedConversation, collate_conversations, conversation_masks, encode_conversation
from .scoring import RegionScorer
from .seagull import ImageEncoding, SeagullForCausalLM, build_model, load_model
from .tokenizer import load_tokenizer, train_tokenizer

__all__ = [
    "NAMED_CONFIGS",
    "EncodedConversation",
    "collate_conversations",
    "conversation_masks",
    "encode_conversation",
    "load_released",
    "load_tokenizer",
    "train_tokenizer",
    "ImageEncoding",
    "RegionScorer",
    "SeagullProcessor",
    "SeagullConfig",
    "SeagullForCausalLM",
    "build_model",
    "get_config",
    "get_named_config",
    "list_configs",
    "load_model",
]

# Auto-class registration (AutoConfig is registered in config.py)
AutoModelForCausalLM.register(SeagullConfig, SeagullForCausalLM, exist_ok=True)
