"""Transfer learning: new heads, linear probing, fine-tuning (last-k, all, LP-FT), knowledge
transferability, influence functions and target-side transforms."""

from pyadvt.transfer.finetune import FinetuneResult, finetune, linear_probe, lp_ft, replace_head
from pyadvt.transfer.probe import KnowledgeTransfer, knowledge_transferability
