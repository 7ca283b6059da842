"""Transfer learning: new heads, linear probing, fine-tuning (last-k, all, LP-FT), knowledge
transferability, influence functions and target-side transforms."""

from pyadvt.transfer.finetune import FinetuneResult, finetune, linear_probe, lp_ft, replace_head
from pyadvt.transfer.probe import KnowledgeTransferabilityResult, knowledge_transferability
from pyadvt.transfer.influence import head_gradients, head_hessian, head_influence, influence_match_rate
from pyadvt.transfer.sweep import balanced_subset, mean_ci, paired_delta, subset_sweep, summarize
from pyadvt.transfer.target_transforms import low_pass, low_resolution

from pyadvt.utils.deprecation import renamed_names as _renamed_names

__all__ = ["balanced_subset", "finetune", "FinetuneResult", "head_gradients", "head_hessian", "head_influence",
           "influence_match_rate", "knowledge_transferability", "KnowledgeTransferabilityResult", "linear_probe",
           "low_pass", "low_resolution", "lp_ft", "mean_ci", "paired_delta", "replace_head", "subset_sweep",
           "summarize"]

#: the former name of the result (issue 15's naming scheme), for one release
__getattr__ = _renamed_names(__name__, {"KnowledgeTransfer": "KnowledgeTransferabilityResult"})
