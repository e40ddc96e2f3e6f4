"""Temporal knowledge distillation as a Keras model: `compile()` + `fit()` on (x, {label, teacher targets}).

    distiller = TemporalDistiller(student, kd_lambda=0.25)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
    distiller.fit(dataset, epochs=..., steps_per_epoch=...)
    inference = strip(student)

The shape follows `keras.distillation.Distiller` (Keras 3.15): a student, a
list-like of distillation losses (`AttentionDistillation`, a
`keras.distillation.DistillationLoss`) and the classification loss's weight
(`student_loss_weight = 1 - λ`). Where it differs, and why:

- there is no teacher model: the teacher (a torch wav2vec 2.0) was run once,
  offline, and its attention rollout is precomputed per clip (the teacher
  store). Its outputs arrive with the data, as `y["teacher_attention"]` (and
  `y["teacher_logits"]` for the optional logit KD), already on the student's
  time axis (`kws_kd.distill.teacher_attention_targets`);
- the distillation loss compares the student's *attention* output a_S (the
  training model's second output), not its logits or a feature map;
- the optional logit KD (β · T² · KL) is added on top, as the paper's loss
  has no such term to share a weight with;
- at λ = 0 the step runs the stripped, logits-only student: no attention
  branch is evaluated and its weights get no gradient, so the vanilla
  baseline is exactly the plain student.

`train_step` returns the step's mean loss terms (`loss`, `cls`, `kd`,
`logit_kd`), the same on every replica under `tf.distribute`.
"""

from __future__ import annotations

import keras

from kws_kd.distill import DistillLoss, attention_kl


class AttentionDistillation(keras.distillation.DistillationLoss):
    """KL between the student's attention a_S and the teacher's target a_T ([B, n'] each), batch mean.

    `direction`: "student_teacher" is the paper's D_KL(a_S | a_T); "teacher_student" the reverse.
    """

    def __init__(self, direction: str = "student_teacher"):
        DistillLoss(kd_lambda=1.0, kl_direction=direction)  # validates the direction with the CLI's message
        self.direction = direction

    def validate_outputs(self, teacher_outputs, student_outputs):
        if tuple(teacher_outputs.shape[1:]) != tuple(student_outputs.shape[1:]):
            raise ValueError(f"teacher attention {tuple(teacher_outputs.shape)} and student attention "
                             f"{tuple(student_outputs.shape)} differ in length")

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        return keras.ops.mean(attention_kl(student_outputs, teacher_outputs, self.direction))

    def get_config(self) -> dict:
        return {"direction": self.direction}


class TemporalDistiller(keras.Model):
    """A student (`build_student(..., attention=True)`) trained with L = λ KL(a_S‖a_T) + (1-λ) L_cls [+ β T² KD]."""

    def __init__(self, student: keras.Model, *, kd_lambda: float = 0.25,
                 distillation_loss: AttentionDistillation | None = None, logit_kd_beta: float = 0.0,
                 logit_kd_temperature: float = 1.0, multi_label: bool = False, name: str = "temporal_distiller",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        from kws_kd.students.attention import strip

        self.distillation_loss = distillation_loss or AttentionDistillation()
        self.loss_terms = DistillLoss(kd_lambda=float(kd_lambda), kl_direction=self.distillation_loss.direction,
                                      multi_label=bool(multi_label), logit_kd_beta=float(logit_kd_beta),
                                      logit_kd_temperature=float(logit_kd_temperature))
        self.student = student
        self.plain = strip(student)  # shares the student's weights
        self.step_model = student if self.loss_terms.uses_attention else self.plain

    @property
    def kd_lambda(self) -> float:
        return self.loss_terms.kd_lambda

    @property
    def student_loss_weight(self) -> float:
        """`keras.distillation.Distiller`'s name for the classification loss's weight, 1 - λ."""
        return 1.0 - self.kd_lambda

    @property
    def train_variables(self) -> list:
        """What a step updates: the student's trainable weights (without the branch at λ = 0)."""
        return self.step_model.trainable_variables

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def build_optimizer(self) -> None:
        """Create the optimizer's slots for exactly `train_variables` (before restoring a checkpoint)."""
        self.optimizer.build(self.train_variables)

    def step_losses(self, x, y, training: bool = True) -> dict:
        """The step's mean loss terms (`total`, `cls`, `kd`, `logit_kd`) on one replica's batch."""
        import tensorflow as tf

        out = self.step_model(x, training=training)
        logits, attention = out if self.loss_terms.uses_attention else (out, None)
        terms = self.loss_terms(logits, y["label"], attention, y.get("teacher_attention"),
                                y.get("teacher_logits") if self.loss_terms.uses_teacher_logits else None)
        return {k: tf.reduce_mean(v) for k, v in terms.items()}

    def train_step(self, data):
        import tensorflow as tf

        x, y = data[0], data[1]
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            means = self.step_losses(x, y)
            scaled = means["total"] / replicas  # summed over replicas: the global-batch mean
        variables = self.train_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply(grads, variables)
        ctx = tf.distribute.get_replica_context()
        reduce = (lambda v: ctx.all_reduce(tf.distribute.ReduceOp.MEAN, v)) if ctx is not None and replicas > 1 \
            else (lambda v: v)
        return {"loss": reduce(means["total"]), "cls": reduce(means["cls"]), "kd": reduce(means["kd"]),
                "logit_kd": reduce(means["logit_kd"])}

    def test_step(self, data):
        x, y = data[0], data[1]
        means = self.step_losses(x, y, training=False)
        return {"loss": means["total"], "cls": means["cls"]}

    def get_config(self) -> dict:
        return {"kd_lambda": self.kd_lambda, "distillation_loss": self.distillation_loss.get_config(),
                "logit_kd_beta": self.loss_terms.logit_kd_beta,
                "logit_kd_temperature": self.loss_terms.logit_kd_temperature,
                "multi_label": self.loss_terms.multi_label}
