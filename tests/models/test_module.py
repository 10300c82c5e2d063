from __future__ import annotations

import pytest
import torch

from vireid_zoo.blocks import NonLocalBlock
from vireid_zoo.core.weights import WeightsMismatchError
from vireid_zoo.models import AGW, AGWModule


@pytest.fixture()
def module() -> AGWModule:
    torch.manual_seed(0)
    return AGWModule(AGW(6, arch="resnet18"))


def test_learning_rate_schedule_is_the_agw_recipe(module: AGWModule) -> None:
    # AGW: epoch < 10: lr * (epoch + 1) / 10; then lr until 20, lr / 10 until 50, lr / 100.
    expected = {0: 0.1, 4: 0.5, 9: 1.0, 10: 1.0, 19: 1.0, 20: 0.1, 49: 0.1, 50: 0.01, 79: 0.01}
    for epoch, factor in expected.items():
        assert module.lr_factor(epoch) == pytest.approx(factor)


def test_parameter_groups_split_backbone_and_new_layers(module: AGWModule) -> None:
    optimizer = module.configure_optimizers()["optimizer"]
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["nesterov"] and optimizer.defaults["momentum"] == 0.9
    backbone, new = optimizer.param_groups
    assert (backbone["name"], new["name"]) == ("backbone", "new_layers")
    assert backbone["initial_lr"] == pytest.approx(0.01) and new["initial_lr"] == pytest.approx(0.1)
    assert backbone["lr"] == pytest.approx(0.001), "warm-up epoch 0 runs at a tenth"
    assert backbone["weight_decay"] == pytest.approx(5e-4)
    in_groups = [id(p) for group in optimizer.param_groups for p in group["params"]]
    trainable = [id(p) for p in module.net.parameters() if p.requires_grad]
    assert sorted(in_groups) == sorted(trainable), "each trainable parameter exactly once"
    assert id(module.net.neck.bn.bias) not in in_groups, "the frozen BNNeck bias is not trained"
    non_local = next(m for m in module.net.modules() if isinstance(m, NonLocalBlock))
    backbone_ids = {id(p) for p in backbone["params"]}
    assert all(id(p) in backbone_ids for p in non_local.parameters())
    assert {id(p) for p in module.net.neck.parameters() if p.requires_grad} <= {
        id(p) for p in new["params"]
    }


def test_adam_option(module: AGWModule) -> None:
    adam = AGWModule(AGW(6, arch="resnet18"), optimizer="adam", lr=3e-4)
    assert isinstance(adam.configure_optimizers()["optimizer"], torch.optim.Adam)
    with pytest.raises(ValueError, match="'rmsprop'"):
        AGWModule(AGW(6, arch="resnet18"), optimizer="rmsprop")


def test_embed_routes_each_image_by_its_modality(module: AGWModule) -> None:
    module.eval()
    images = torch.randn(5, 3, 64, 32)
    modalities = torch.tensor([1, 0, 0, 1, 0])
    mixed = module.embed(images, modalities)
    with torch.no_grad():
        visible = module.net.extract_features(images[[1, 2, 4]], "visible")
        infrared = module.net.extract_features(images[[0, 3]], "infrared")
    torch.testing.assert_close(mixed[[1, 2, 4]], visible)
    torch.testing.assert_close(mixed[[0, 3]], infrared)


def test_flip_test_averages_the_mirrored_embedding(module: AGWModule) -> None:
    module.eval()
    module.flip_test = True
    images = torch.randn(3, 3, 64, 32)
    flipped = module.embed(images, torch.zeros(3, dtype=torch.long))
    with torch.no_grad():
        plain = module.net.extract_features(images, "visible")
        mirror = module.net.extract_features(images.flip(3), "visible")
    torch.testing.assert_close(flipped, torch.nn.functional.normalize(plain + mirror, dim=1))


def test_training_step_combines_identity_and_wrt_losses(module: AGWModule) -> None:
    module.log_dict = lambda *args, **kwargs: None  # no trainer attached
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    batch = {
        "visible": torch.randn(6, 3, 64, 32),
        "infrared": torch.randn(6, 3, 64, 32),
        "visible_pid": labels,
        "infrared_pid": labels,
    }
    loss = module.training_step(batch, 0)
    output = module.net.forward_pair(batch["visible"], batch["infrared"])
    both = torch.cat([labels, labels])
    expected = module.identity_loss(output.logits, both) + module.triplet_loss(output.pool, both)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert module.net.backbone.infrared_stages[0].conv1.weight.grad.abs().sum() > 0


def test_checkpoint_of_another_architecture_is_refused_in_one_message(module: AGWModule) -> None:
    other = AGWModule(AGW(6, arch="resnet34"))
    checkpoint = {"state_dict": other.state_dict(), "hyper_parameters": dict(other.hparams)}
    with pytest.raises(WeightsMismatchError) as error:
        module.on_load_checkpoint(checkpoint)
    message = str(error.value)
    assert "AGW, arch='resnet34'" in message and "AGWModule(AGW, arch='resnet18'" in message
    assert "\n" not in message
    # Weights alone (no record of what trained them) are refused naming the keys.
    with pytest.raises(WeightsMismatchError) as error:
        module.on_load_checkpoint({"state_dict": other.state_dict()})
    message = str(error.value)
    assert "unexpected (e.g. ['net.backbone.shared_stages" in message and "\n" not in message


def test_a_classifier_of_another_size_is_reinitialised_with_a_warning(module: AGWModule) -> None:
    other = AGWModule(AGW(9, arch="resnet18"))
    checkpoint = {"state_dict": other.state_dict()}
    with pytest.warns(UserWarning, match="9 classes and this model's 6"):
        module.on_load_checkpoint(checkpoint)
    module.load_state_dict(checkpoint["state_dict"])
    torch.testing.assert_close(
        module.net.backbone.shared_stages[0][0].conv1.weight,
        other.net.backbone.shared_stages[0][0].conv1.weight,
    )
    assert module.net.neck.classifier.weight.shape == (6, 512)
