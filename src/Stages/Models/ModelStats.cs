using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Stages.Models;

/// <summary>Parameter counts and multiply-adds, measured on the built model rather than computed from the spec.</summary>
public static class ModelStats
{
    public static long Parameters(nn.Module module) => module.parameters().Sum(p => p.numel());

    /// <summary>
    /// Multiply-adds per image for one full unroll of <paramref name="steps"/> steps: every conv and linear layer runs
    /// once per step, so one step is measured (forward hooks, batch 1) and multiplied by T. Elementwise gating,
    /// pooling and resizing are not counted (a few percent at most).
    /// </summary>
    public static long MultiplyAdds(IVisionModel model, int steps)
    {
        long perStep = 0;
        var removers = new List<Action>();
        foreach (var m in model.Module.modules())
        {
            if (m is Conv2d conv)
            {
                var hook = conv.register_forward_hook((_, _, output) =>
                {
                    perStep += output.numel() / output.shape[0] * (conv.weight!.numel() / conv.weight.shape[0]);
                    return output;
                });
                removers.Add(hook.remove);
            }
            else if (m is Linear linear)
            {
                var hook = linear.register_forward_hook((_, _, output) =>
                {
                    perStep += linear.weight!.numel();
                    return output;
                });
                removers.Add(hook.remove);
            }
        }
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var spec = model.Spec;
            model.Unroll(zeros(1, spec.InChannels, spec.InputSize, spec.InputSize, device: model.Module.parameters().First().device), steps: 1);
        }
        finally
        {
            foreach (var remove in removers) remove();
        }
        return perStep * (model.Spec.Family == ModelFamily.Resnet ? 1 : steps);
    }
}
