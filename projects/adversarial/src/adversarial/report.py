"""The robustness report: train the models, run every attack and defence, cross-check with ART, and
write report.json, the plots and report.html; a missed target fails the run after that."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from adversarial.art_check import (
    AutoAttackConfig,
    art_autoattack_accuracy,
    art_fgsm_accuracy,
    art_pgd_accuracy,
)
from adversarial.art_compare import (
    BACKDOOR_TOLERANCE,
    art_copycat,
    compare_backdoor,
    compare_membership_inference,
)
from adversarial.attacks import (
    FGSMConfig,
    Loss,
    PGDConfig,
    SimBAConfig,
    accuracy,
    check_eps,
    fgsm,
    pgd,
    probability_oracle,
    simba,
    transfer,
)
from adversarial.defences import (
    AdversarialTrainingConfig,
    DisagreementDetector,
    adversarial_training_loss,
    distillation_loss,
    temperature_loss,
)
from adversarial.models import DigitMLP, train_cnn, train_mlp
from adversarial.plots import save_examples, save_robustness_curves, write_html
from adversarial.poisoning import BackdoorConfig, attack_success_rate, poison
from adversarial.privacy import extract, membership_inference
from ml_core import Timer, collect_run_metadata, seed_everything, write_json_atomic
from ml_core.cli import (
    CheckFailed,
    config_to_dict,
    require,
    require_fraction,
    require_positive,
)
from vision.checkpoint import save_checkpoint
from vision.data import Split, load_data
from vision.model import DigitCNN
from vision.training import FitConfig

PACKAGES = ("torch", "numpy", "scikit-learn", "adversarial-robustness-toolbox")
EPS_GRID = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
TARGETS = {
    "adversarial_clean_accuracy": 0.95,
    "adversarial_pgd20_accuracy": 0.60,
    "adversarial_autoattack_accuracy": 0.60,
    "backdoor_attack_success": 0.90,
    "backdoor_max_clean_drop": 0.02,
    "art_max_gap": 0.01,
}


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """Attack and defend the digit CNN on the 8x8 digits; write report.json, robustness.png,
    examples.png and report.html, then check the targets (exit 1 naming each missed one)."""

    out: Path = Path("runs/adversarial")
    """Output directory."""

    eps: float = 0.1
    """L-inf budget of every attack and of adversarial training (pixels in [0, 1])."""

    quick: bool = False
    """Smoke run: few epochs, 100 test images, a small AutoAttack; targets are still checked."""

    seed: int = 0
    """Seeds the data split, every model's initial weights and every attack."""

    epochs: int = 40
    """Maximum epochs of each standard model (early stopping on validation loss)."""

    adversarial_epochs: int = 30
    """Maximum epochs of PGD adversarial training."""

    train_pgd_steps: int = 7
    """PGD steps per batch in adversarial training."""

    lam: float = 0.5
    """Weight of the clean loss in adversarial training, in [0, 1]."""

    pgd_steps: int = 20
    """PGD steps of the evaluation attacks."""

    temperature: float = 20.0
    """Defensive distillation temperature."""

    poison_fraction: float = 0.03
    """Share of the training set carrying the backdoor trigger."""

    examples: int | None = None
    """Test images the attacks run on (unset: all 360; --quick: 100)."""

    autoattack_examples: int | None = None
    """Test images for ART's AutoAttack (unset: as --examples; --quick: 40)."""

    square_queries: int = 1000
    """Square Attack iterations inside AutoAttack (the standard is 5000)."""

    check: bool = True
    """Exit 1 naming each missed target (after writing every output)."""

    def __post_init__(self) -> None:
        check_eps(self.eps)
        require_positive(
            self,
            "epochs",
            "adversarial_epochs",
            "train_pgd_steps",
            "pgd_steps",
            "temperature",
            "examples",
            "autoattack_examples",
            "square_queries",
        )
        require_fraction(self, "lam", allow_zero=True)
        require_fraction(self, "poison_fraction")
        require(0 <= self.seed < 2**32, "seed", f"must be in [0, 2**32), got {self.seed}")


@dataclasses.dataclass(frozen=True)
class _Sizes:
    epochs: int
    adversarial_epochs: int
    examples: int | None
    autoattack_examples: int | None
    apgd_iterations: int
    square_queries: int
    query_counts: tuple[int, ...]


def _sizes(config: ReportConfig) -> _Sizes:
    if config.quick:
        return _Sizes(
            epochs=min(config.epochs, 6),
            adversarial_epochs=min(config.adversarial_epochs, 4),
            examples=config.examples or 100,
            autoattack_examples=config.autoattack_examples or 40,
            apgd_iterations=20,
            square_queries=min(config.square_queries, 100),
            query_counts=(50, 200),
        )
    return _Sizes(
        epochs=config.epochs,
        adversarial_epochs=config.adversarial_epochs,
        examples=config.examples,
        autoattack_examples=config.autoattack_examples or config.examples,
        apgd_iterations=100,
        square_queries=config.square_queries,
        query_counts=(25, 50, 100, 200, 400, 800),
    )


def _subset(split: Split, count: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    end = len(split) if count is None else min(count, len(split))
    return torch.from_numpy(split.images[:end]), torch.from_numpy(split.labels[:end])


def _pgd_accuracy(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, config: PGDConfig
) -> float:
    return accuracy(model, pgd(model, x, y, config), y)


def run_report(config: ReportConfig) -> dict[str, Any]:
    """Run everything, write the outputs, and raise :class:`CheckFailed` naming missed targets."""
    seed_everything(config.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    sizes = _sizes(config)
    timer = Timer().start()
    out = config.out
    data = load_data("digits", seed=config.seed)
    x, y = _subset(data.test, sizes.examples)
    fit_config = FitConfig(epochs=sizes.epochs, seed=config.seed)
    eps = config.eps
    pgd20 = PGDConfig(eps=eps, steps=config.pgd_steps, seed=config.seed)
    pgd20_margin = dataclasses.replace(pgd20, loss="margin")
    stages = tqdm(total=9, desc="report", unit="stage")
    report: dict[str, Any] = {
        "config": config_to_dict(config),
        "data": {
            "source": data.source,
            "train": len(data.train),
            "validation": len(data.validation),
            "test": len(data.test),
            "attacked_test_images": len(y),
        },
    }

    def stage(name: str) -> None:
        stages.set_postfix_str(name)
        stages.update(1)

    # 1. The undefended CNN and its white-box and black-box attacks.
    stages.set_postfix_str("undefended CNN")
    undefended = train_cnn(data.train, data.validation, fit_config, description="undefended")
    save_checkpoint(out / "undefended.pt", undefended, role="undefended", seed=config.seed)
    simba_result = simba(probability_oracle(undefended), x, y, SimBAConfig(eps, config.seed))
    clean_correct = undefended(x).argmax(1) == y
    fooled = simba_result.success & clean_correct
    mlp = train_mlp(data.train, data.validation, fit_config, description="MLP surrogate")
    _, transfer_accuracy = transfer(mlp, undefended, x, y, pgd20)
    report["undefended"] = {
        "clean_accuracy": accuracy(undefended, x, y),
        "fgsm_accuracy": accuracy(undefended, fgsm(undefended, x, y, FGSMConfig(eps)), y),
        "pgd20_accuracy": _pgd_accuracy(undefended, x, y, pgd20),
        "pgd20_margin_accuracy": _pgd_accuracy(undefended, x, y, pgd20_margin),
        "simba_accuracy": accuracy(undefended, simba_result.adversarial, y),
        "simba_success_rate_on_correct": float(fooled.sum()) / max(1, int(clean_correct.sum())),
        "simba_mean_queries_per_success": (
            float(simba_result.queries[fooled].float().mean()) if bool(fooled.any()) else None
        ),
        "simba_median_queries_per_success": (
            float(simba_result.queries[fooled].float().median()) if bool(fooled.any()) else None
        ),
        "transfer_from_mlp_accuracy": transfer_accuracy,
        "mlp_surrogate_clean_accuracy": accuracy(mlp, x, y),
    }
    stage("adversarial training")

    # 2. PGD adversarial training.
    adversarial_config = FitConfig(epochs=sizes.adversarial_epochs, seed=config.seed)
    training = AdversarialTrainingConfig(
        eps=eps, steps=config.train_pgd_steps, lam=config.lam, seed=config.seed
    )
    defended = train_cnn(
        data.train,
        data.validation,
        adversarial_config,
        batch_loss=adversarial_training_loss(training),
        description="adversarial training",
    )
    save_checkpoint(
        out / "adversarial.pt", defended, role="adversarially-trained", seed=config.seed
    )
    report["adversarially_trained"] = {
        "training": config_to_dict(training),
        "clean_accuracy": accuracy(defended, x, y),
        "fgsm_accuracy": accuracy(defended, fgsm(defended, x, y, FGSMConfig(eps)), y),
        "pgd20_accuracy": _pgd_accuracy(defended, x, y, pgd20),
        "pgd20_margin_accuracy": _pgd_accuracy(defended, x, y, pgd20_margin),
        "simba_accuracy": accuracy(
            defended,
            simba(probability_oracle(defended), x, y, SimBAConfig(eps, config.seed)).adversarial,
            y,
        ),
    }
    stage("ART cross-check")

    # 3. ART: the same FGSM and PGD on the same models and images; AutoAttack.
    art_rows = []
    for name, model in (("undefended", undefended), ("adversarially_trained", defended)):
        section = report[name]
        ours_fixed = _pgd_accuracy(model, x, y, dataclasses.replace(pgd20, random_start=False))
        art_rows += [
            {
                "model": name,
                "attack": "FGSM",
                "ours": section["fgsm_accuracy"],
                "art": art_fgsm_accuracy(model, x, y, eps),
            },
            {
                "model": name,
                "attack": f"PGD-{config.pgd_steps}, no random start",
                "ours": ours_fixed,
                "art": art_pgd_accuracy(
                    model, x, y, dataclasses.replace(pgd20, random_start=False)
                ),
            },
            {
                "model": name,
                "attack": f"PGD-{config.pgd_steps}, random start",
                "ours": section["pgd20_accuracy"],
                "art": art_pgd_accuracy(model, x, y, pgd20),
            },
        ]
    for row in art_rows:
        row["gap"] = abs(row["ours"] - row["art"])
        row["checked"] = not row["attack"].endswith(", random start")
    auto_x, auto_y = _subset(data.test, sizes.autoattack_examples)
    autoattack = AutoAttackConfig(
        eps=eps,
        apgd_iterations=sizes.apgd_iterations,
        square_queries=sizes.square_queries,
        seed=config.seed,
    )
    report["art"] = {
        "cross_check": art_rows,
        # Deterministic attacks compute the same thing in both: they must agree. With a random
        # start the two draw different starting points (torch vs numpy generators), so that gap
        # is sampling noise and is reported, not checked.
        "max_gap": max(row["gap"] for row in art_rows if row["checked"]),
        "max_gap_random_start": max(row["gap"] for row in art_rows if not row["checked"]),
        "autoattack": {
            "attacks": "APGD-CE, APGD-DLR, Square (L-inf)",
            "config": config_to_dict(autoattack),
            "examples": len(auto_y),
            "undefended_accuracy": art_autoattack_accuracy(undefended, auto_x, auto_y, autoattack),
            "adversarially_trained_accuracy": art_autoattack_accuracy(
                defended, auto_x, auto_y, autoattack
            ),
            "adversarially_trained_clean_accuracy_on_these": accuracy(defended, auto_x, auto_y),
        },
    }
    report["adversarially_trained"]["autoattack_accuracy"] = report["art"]["autoattack"][
        "adversarially_trained_accuracy"
    ]
    stage("distillation")

    # 4. Defensive distillation: resists FGSM on softmax, falls to the logit margin.
    # Logits must grow T-fold to fit softmax(logits / T): a larger step size gets there in time.
    distillation_fit = dataclasses.replace(fit_config, learning_rate=3e-3)
    teacher = train_cnn(
        data.train,
        data.validation,
        distillation_fit,
        batch_loss=temperature_loss(config.temperature),
        description="distillation teacher",
    )
    student = train_cnn(
        data.train,
        data.validation,
        distillation_fit,
        batch_loss=distillation_loss(teacher, config.temperature),
        description="distilled student",
    )
    report["distilled"] = {
        "temperature": config.temperature,
        "clean_accuracy": accuracy(student, x, y),
        "fgsm_softmax_accuracy": accuracy(student, fgsm(student, x, y, FGSMConfig(eps)), y),
        "pgd20_softmax_accuracy": _pgd_accuracy(student, x, y, pgd20),
        "fgsm_margin_accuracy": accuracy(
            student, fgsm(student, x, y, FGSMConfig(eps, loss="margin")), y
        ),
        "pgd20_margin_accuracy": _pgd_accuracy(student, x, y, pgd20_margin),
        "verdict": "",
    }
    distilled = report["distilled"]
    distilled["verdict"] = (
        "not robust: the logit-margin attack breaks it "
        f"({distilled['pgd20_margin_accuracy']:.1%} under PGD-{config.pgd_steps} on logits vs "
        f"{distilled['pgd20_softmax_accuracy']:.1%} on softmax; its gradients vanish, they are "
        "not absent)"
        if distilled["pgd20_margin_accuracy"] < report["adversarially_trained"]["pgd20_accuracy"]
        else "the margin attack did not break it here; check with AutoAttack before trusting it"
    )
    stage("detection")

    # 5. Detection: the CNN and the MLP disagree on an input.
    detector = DisagreementDetector(undefended, mlp)
    adversarial_x = pgd(undefended, x, y, pgd20)
    fooled_cnn = undefended(adversarial_x).argmax(1) != y
    clean_alerts = detector.alerts(x)
    adversarial_alerts = detector.alerts(adversarial_x)
    report["detection"] = {
        "method": "alert when the CNN and the MLP predict different classes",
        "clean_false_positive_rate": float(clean_alerts.float().mean()),
        "detection_rate_on_pgd_that_fooled_the_cnn": (
            float(adversarial_alerts[fooled_cnn].float().mean()) if bool(fooled_cnn.any()) else None
        ),
        "caveat": "non-adaptive: PGD was crafted against the CNN alone; an attacker who knows "
        "both models can fool both the same way",
    }
    stage("backdoor")

    # 6. Backdoor poisoning, trained with the undefended model's recipe.
    backdoor = BackdoorConfig(fraction=config.poison_fraction, seed=config.seed)
    poisoned_train, poisoned_indices = poison(data.train, backdoor)
    backdoored = train_cnn(poisoned_train, data.validation, fit_config, description="backdoored")
    full_x, full_y = _subset(data.test, None)
    clean_baseline = accuracy(undefended, full_x, full_y)
    clean_backdoored = accuracy(backdoored, full_x, full_y)
    report["backdoor"] = {
        "config": config_to_dict(backdoor),
        "poisoned_samples": len(poisoned_indices),
        "poisoned_fraction": len(poisoned_indices) / len(data.train),
        "clean_accuracy_without_poison": clean_baseline,
        "clean_accuracy_with_poison": clean_backdoored,
        "clean_accuracy_drop": clean_baseline - clean_backdoored,
        "attack_success_rate": attack_success_rate(backdoored, data.test, backdoor),
        "attack_success_rate_of_clean_model": attack_success_rate(undefended, data.test, backdoor),
    }
    # ART's backdoor attack on the same images, trigger and target; the same training recipe.
    report["art"]["backdoor"] = dataclasses.asdict(
        compare_backdoor(
            data.train,
            data.validation,
            data.test,
            poisoned_indices,
            backdoor,
            fit_config,
            (report["backdoor"]["attack_success_rate"], clean_backdoored),
        )
    )
    stage("membership inference")

    # 7. Membership inference: an overfit and a regularised model on the same 300 members.
    members = Split(data.train.images[:300], data.train.labels[:300])
    overfit = train_cnn(
        members,
        data.validation,
        FitConfig(
            epochs=max(sizes.epochs, 10) * 2,
            weight_decay=0.0,
            shift_pixels=0,
            early_stopping=False,
            seed=config.seed,
        ),
        dropout=0.0,
        description="overfit",
    )
    regularised = train_cnn(
        members,
        data.validation,
        FitConfig(epochs=sizes.epochs * 2, weight_decay=0.05, seed=config.seed),
        dropout=0.5,
        description="regularised",
    )
    report["membership_inference"] = {
        "members": len(members),
        "nonmembers": len(data.test),
        "overfit": dataclasses.asdict(membership_inference(overfit, members, data.test)),
        "regularised": dataclasses.asdict(membership_inference(regularised, members, data.test)),
        "overfit_test_accuracy": accuracy(overfit, full_x, full_y),
        "regularised_test_accuracy": accuracy(regularised, full_x, full_y),
    }
    report["art"]["membership_inference"] = {
        name: compare_membership_inference(model, members, data.test, config.seed)
        for name, model in (("overfit", overfit), ("regularised", regularised))
    }
    stage("model extraction")

    # 8. Model extraction: query the undefended CNN on unlabelled digits, train an MLP on its
    # answers, measure agreement on the test split.
    query_counts = [count for count in sizes.query_counts if count <= len(data.train)]
    extraction_fit = FitConfig(epochs=max(sizes.epochs, 10) * 2, seed=config.seed)
    rows = extract(
        undefended,
        data.train.images,
        query_counts,
        data.test.images,
        lambda: DigitMLP(data.image_size),
        extraction_fit,
    )
    report["model_extraction"] = {"surrogate": "MLP", "victim": "undefended CNN", "rows": rows}
    copycat_rows = art_copycat(
        undefended,
        data.train.images,
        query_counts,
        data.test.images,
        lambda: DigitMLP(data.image_size),
        extraction_fit,
    )
    report["art"]["model_extraction"] = {
        "attack": "CopycatCNN",
        "rows": [
            {"queries": ours["queries"], "ours": ours["agreement"], "art": theirs["agreement"]}
            for ours, theirs in zip(rows, copycat_rows, strict=True)
        ],
    }
    stage("robustness curves")

    # 9. Robust accuracy vs epsilon, and example images.
    curves: dict[str, list[float]] = {}
    runs: tuple[tuple[str, torch.nn.Module, Loss], ...] = (
        ("undefended, PGD (CE)", undefended, "ce"),
        ("adversarially trained, PGD (CE)", defended, "ce"),
        ("adversarially trained, PGD (margin)", defended, "margin"),
        ("distilled, PGD (CE on softmax)", student, "ce"),
        ("distilled, PGD (logit margin)", student, "margin"),
    )
    for name, attacked, loss in runs:
        values = [accuracy(attacked, x, y)]
        for value in EPS_GRID:
            attack = PGDConfig(eps=value, steps=config.pgd_steps, loss=loss, seed=config.seed)
            values.append(_pgd_accuracy(attacked, x, y, attack))
        curves[name] = values
    report["robustness_curves"] = {"eps": [0.0, *EPS_GRID], "accuracy": curves}
    stages.close()

    report["seconds"] = timer.stop()
    report["targets"] = TARGETS
    missed = _missed_targets(report, config)
    report["missed_targets"] = missed
    report["meets_targets"] = not missed
    report["run"] = collect_run_metadata(PACKAGES).to_dict()
    _write_outputs(out, report, curves, undefended, defended, x, y, adversarial_x, config)
    print(_summary(report))
    if missed and config.check:
        raise CheckFailed("; ".join(missed))
    return report


def _missed_targets(report: dict[str, Any], config: ReportConfig) -> list[str]:
    defended = report["adversarially_trained"]
    backdoor = report["backdoor"]
    checks = [
        (
            defended["clean_accuracy"] >= TARGETS["adversarial_clean_accuracy"],
            f"adversarially trained clean accuracy {defended['clean_accuracy']:.4f} < "
            f"{TARGETS['adversarial_clean_accuracy']:.2f}",
        ),
        (
            defended["pgd20_accuracy"] >= TARGETS["adversarial_pgd20_accuracy"],
            f"adversarially trained PGD-{config.pgd_steps} accuracy "
            f"{defended['pgd20_accuracy']:.4f} < {TARGETS['adversarial_pgd20_accuracy']:.2f}",
        ),
        (
            defended["autoattack_accuracy"] >= TARGETS["adversarial_autoattack_accuracy"],
            f"adversarially trained AutoAttack accuracy {defended['autoattack_accuracy']:.4f} < "
            f"{TARGETS['adversarial_autoattack_accuracy']:.2f}",
        ),
        (
            backdoor["attack_success_rate"] >= TARGETS["backdoor_attack_success"],
            f"backdoor attack success {backdoor['attack_success_rate']:.4f} < "
            f"{TARGETS['backdoor_attack_success']:.2f}",
        ),
        (
            backdoor["clean_accuracy_drop"] <= TARGETS["backdoor_max_clean_drop"],
            f"backdoor clean accuracy drop {backdoor['clean_accuracy_drop']:.4f} > "
            f"{TARGETS['backdoor_max_clean_drop']:.2f}",
        ),
        (
            report["art"]["max_gap"] <= TARGETS["art_max_gap"],
            f"ART cross-check gap {report['art']['max_gap']:.4f} > {TARGETS['art_max_gap']:.2f}",
        ),
    ]
    return [message for ok, message in checks if not ok]


def _write_outputs(
    out: Path,
    report: dict[str, Any],
    curves: dict[str, list[float]],
    undefended: DigitCNN,
    defended: DigitCNN,
    x: torch.Tensor,
    y: torch.Tensor,
    adversarial_x: torch.Tensor,
    config: ReportConfig,
) -> None:
    write_json_atomic(out / "report.json", report)
    save_robustness_curves(EPS_GRID, curves, out / "robustness.png", config.eps)
    shown = slice(0, 8)
    with torch.no_grad():
        clean_predictions = undefended(x[shown]).argmax(1).tolist()
        adversarial_predictions = undefended(adversarial_x[shown]).argmax(1).tolist()
    save_examples(
        x[shown].numpy(),
        adversarial_x[shown].numpy(),
        y[shown].tolist(),
        clean_predictions,
        adversarial_predictions,
        out / "examples.png",
        f"undefended CNN under PGD-{config.pgd_steps}, eps {config.eps} (red: fooled)",
    )
    undefended_rows = [{"metric": k, "value": v} for k, v in report["undefended"].items()]
    defended_rows = [
        {"metric": k, "value": v}
        for k, v in report["adversarially_trained"].items()
        if k != "training"
    ]
    distilled_rows = [{"metric": k, "value": v} for k, v in report["distilled"].items()]
    mia = report["membership_inference"]
    mia_rows = [
        {"model": name, **mia[name], "test_accuracy": mia[f"{name}_test_accuracy"]}
        for name in ("overfit", "regularised")
    ]
    notes = [
        f"<span class='{'ok' if report['meets_targets'] else 'fail'}'>targets met: "
        f"{report['meets_targets']}</span> {'; '.join(report['missed_targets'])}",
        f"eps = {config.eps} (L-inf, pixels in [0, 1]); {report['data']['attacked_test_images']}"
        f" test images attacked; {report['seconds']:.0f} s{' (--quick)' if config.quick else ''}",
    ]
    write_html(
        out / "report.html",
        "Adversarial robustness of the digit CNN",
        [
            (
                "Undefended CNN",
                "White-box, score-based black-box and transfer attacks.",
                undefended_rows,
            ),
            ("Adversarially trained CNN", "PGD adversarial training.", defended_rows),
            (
                "ART cross-check",
                "Same model, eps, steps and seed in IBM ART.",
                report["art"]["cross_check"],
            ),
            (
                "AutoAttack (ART)",
                "APGD-CE, APGD-DLR and Square; robust only if all fail.",
                [{k: v for k, v in report["art"]["autoattack"].items() if k != "config"}],
            ),
            ("Defensive distillation", "Resists FGSM on softmax; not robust.", distilled_rows),
            ("Detection", "Disagreement of two architectures.", [report["detection"]]),
            (
                "Backdoor",
                "Trigger patch in the bottom-right corner.",
                [report["backdoor"] | {"config": ""}],
            ),
            ("Membership inference", "Loss threshold; AUC 0.5 = no leak.", mia_rows),
            (
                "Model extraction",
                "MLP trained on the victim's answers.",
                report["model_extraction"]["rows"],
            ),
            (
                "Backdoor: ours vs ART",
                "ART's PoisoningAttackBackdoor (insert_image, same patch, indices and target), "
                f"same CNN recipe and seed; agreement within {BACKDOOR_TOLERANCE:.0%} of each.",
                [report["art"]["backdoor"]],
            ),
            (
                "Membership inference: ours vs ART",
                "ART's black-box attacks (random forest on loss or outputs) learn on half the "
                "members and non-members; every AUC is on the other half.",
                [
                    {"model": name, **values}
                    for name, values in report["art"]["membership_inference"].items()
                ],
            ),
            (
                "Model extraction: ours vs ART",
                "Agreement with the victim; ART's CopycatCNN, same MLP, budgets and epochs.",
                report["art"]["model_extraction"]["rows"],
            ),
        ],
        ["robustness.png", "examples.png"],
        notes,
    )


def _summary(report: dict[str, Any]) -> str:
    undefended = report["undefended"]
    defended = report["adversarially_trained"]
    backdoor = report["backdoor"]
    mia = report["membership_inference"]
    return "\n".join(
        [
            f"undefended: clean {undefended['clean_accuracy']:.4f}, "
            f"PGD-20 {undefended['pgd20_accuracy']:.4f}",
            f"adversarially trained: clean {defended['clean_accuracy']:.4f}, "
            f"PGD-20 {defended['pgd20_accuracy']:.4f}, "
            f"AutoAttack {defended['autoattack_accuracy']:.4f}",
            f"distilled: FGSM(softmax) {report['distilled']['fgsm_softmax_accuracy']:.4f}, "
            f"PGD-20(margin) {report['distilled']['pgd20_margin_accuracy']:.4f}",
            f"backdoor: ASR {backdoor['attack_success_rate']:.4f} at "
            f"{backdoor['poisoned_fraction']:.3f} poisoned, "
            f"clean drop {backdoor['clean_accuracy_drop']:.4f}",
            f"membership AUC: overfit {mia['overfit']['auc']:.3f}, "
            f"regularised {mia['regularised']['auc']:.3f}",
            f"ART backdoor: ASR {report['art']['backdoor']['art_attack_success']:.4f}, "
            f"clean {report['art']['backdoor']['art_clean_accuracy']:.4f}, "
            f"agrees with ours: {report['art']['backdoor']['agrees']}",
            f"ART max gap {report['art']['max_gap']:.4f}; {report['seconds']:.0f}s; "
            f"targets met: {report['meets_targets']}; outputs in {report['config']['out']}",
        ]
    )
