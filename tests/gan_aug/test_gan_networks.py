"""Generator / projection discriminator: shapes, output range, conditioning, and the projection identity."""

from __future__ import annotations

import pytest
import torch
from einops import reduce
from torch.nn import functional as F

from gan_aug.networks import Discriminator, Generator, build_networks, count_parameters

B = 4


def _inputs(batch: int = B, z_dim: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.randn(batch, z_dim), torch.tensor([0, 3, 5, 7][:batch]), torch.tensor([0, 1, 2, 2][:batch])


@pytest.mark.parametrize(("resolution", "width"), [(32, 4), (48, 4), (64, 4), (128, 2)])
def test_shapes_range_and_gradient(tiny_config, resolution: int, width: int) -> None:
    G, D = build_networks(tiny_config(resolution, width))
    z, y, d = _inputs()
    x = G(z, y, d)
    assert x.shape == (B, 3, resolution, resolution)
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert x.std() > 1e-3  # not a constant image
    logits = D(x, y, d)
    assert logits.shape == (B,)
    logits.sum().backward()  # G's first layer gets a gradient through D: the two are wired end to end
    grad = G.linear.parametrizations.weight.original.grad
    assert grad is not None and grad.abs().sum() > 0


def test_generator_depends_on_class_and_domain(tiny_config) -> None:
    G = Generator(tiny_config(32).generator, num_classes=8, num_domains=3)
    G(torch.randn(16, 16), torch.randint(0, 8, (16,)), torch.randint(0, 3, (16,)))  # running BN stats
    G.eval()
    z = torch.randn(1, 16).repeat(3, 1)  # one latent, three conditions
    y, d = torch.tensor([1, 4, 1]), torch.tensor([2, 2, 0])
    with torch.no_grad():
        x = G(z, y, d)
        again = G(z[:1], y[:1], d[:1])
    torch.testing.assert_close(again, x[:1])  # eval mode: deterministic and independent of the batch
    assert (x[0] - x[1]).abs().max() > 1e-3, "changing the class did not change the image"
    assert (x[0] - x[2]).abs().max() > 1e-3, "changing the domain did not change the image"


def test_projection_terms_are_inner_products(tiny_config) -> None:
    D = Discriminator(tiny_config(32).discriminator, num_classes=8, num_domains=3).eval()  # eval: SN fixed
    x = torch.randn(B, 3, 32, 32)
    _, y, d = _inputs()
    with torch.no_grad():
        parts = D.forward_parts(x, y, d)
        features = reduce(F.relu(D.blocks(x)), "b c h w -> b c", "sum")
        class_w, domain_w = D.class_embed.weight, D.domain_embed.weight  # spectrally normalised tables
    torch.testing.assert_close(parts.features, features)
    torch.testing.assert_close(parts.class_term, torch.einsum("bc,bc->b", class_w[y], features))
    torch.testing.assert_close(parts.domain_term, torch.einsum("bc,bc->b", domain_w[d], features))
    torch.testing.assert_close(parts.logits, parts.unconditional + parts.class_term + parts.domain_term)
    torch.testing.assert_close(D(x, y, d), parts.logits)
    assert parts.class_term.abs().min() > 0 and parts.domain_term.abs().min() > 0

    # Changing only the labels leaves h alone and moves the logit by exactly the projection difference.
    y2, d2 = (y + 1) % 8, (d + 1) % 3
    with torch.no_grad():
        moved = D.forward_parts(x, y2, d2)
    torch.testing.assert_close(moved.features, parts.features)
    expected = ((class_w[y2] - class_w[y]) * features).sum(1)
    expected += ((domain_w[d2] - domain_w[d]) * features).sum(1)
    torch.testing.assert_close(moved.logits - parts.logits, expected)
    assert expected.abs().min() > 0


def test_bad_inputs_are_named(tiny_config) -> None:
    G, D = build_networks(tiny_config(32))
    z, y, d = _inputs()
    with pytest.raises(ValueError, match="class indices"):
        G(z, torch.tensor([0, -1, 2, 3]), d)  # unlabelled frames cannot condition G
    with pytest.raises(ValueError, match="domain indices"):
        D(torch.randn(B, 3, 32, 32), y, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"\[B, 3, 32, 32\]"):
        D(torch.randn(B, 3, 64, 64), y, d)
    with pytest.raises(ValueError, match="z of shape"):
        G(torch.randn(B, 8), y, d)


def test_flat_z_and_parameter_count(tiny_config) -> None:
    cfg = tiny_config(48)
    cfg.generator.hierarchical_z = False
    G = Generator(cfg.generator, 8, 3)
    assert G.z_chunks == [16] and G.base == 3
    assert G(*_inputs()).shape == (B, 3, 48, 48)
    hier = Generator(tiny_config(48).generator, 8, 3)
    assert sum(hier.z_chunks) == 16 and len(set(hier.z_chunks[1:])) == 1  # no latent dimension dropped
    assert count_parameters(G) == sum(p.numel() for p in G.parameters()) > 0
