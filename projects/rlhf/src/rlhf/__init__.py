"""RLHF on CPU-sized models: preference data, a Bradley-Terry reward model, PPO with a KL penalty,
and DPO, on an embedded synthetic labeler task."""

from rlhf.data import (
    PreferenceDataError,
    PreferencePair,
    load_preferences,
    load_prompts,
    ranking_to_pairs,
    split_hh_dialogue,
)
from rlhf.dpo import DPOConfig, train_dpo
from rlhf.losses import (
    adaptive_kl_coef,
    bradley_terry_loss,
    clipped_policy_loss,
    clipped_value_loss,
    dpo_loss,
    entropy_from_logits,
    gae,
    kl_penalty_rewards,
    ppo_total_loss,
)
from rlhf.models import BasePolicyConfig, PolicyWithValueHead, train_base_policy
from rlhf.ppo import PPOConfig, train_ppo
from rlhf.preferences import DataConfig, make_preference_data
from rlhf.reward import RewardConfig, train_reward_model
from rlhf.task import LABELER_INSTRUCTIONS, label_pair, labeler_score, make_prompts

__all__ = [
    "LABELER_INSTRUCTIONS",
    "BasePolicyConfig",
    "DPOConfig",
    "DataConfig",
    "PPOConfig",
    "PolicyWithValueHead",
    "PreferenceDataError",
    "PreferencePair",
    "RewardConfig",
    "adaptive_kl_coef",
    "bradley_terry_loss",
    "clipped_policy_loss",
    "clipped_value_loss",
    "dpo_loss",
    "entropy_from_logits",
    "gae",
    "kl_penalty_rewards",
    "label_pair",
    "labeler_score",
    "load_preferences",
    "load_prompts",
    "make_preference_data",
    "make_prompts",
    "ppo_total_loss",
    "ranking_to_pairs",
    "split_hh_dialogue",
    "train_base_policy",
    "train_dpo",
    "train_ppo",
    "train_reward_model",
]
