using Pipeline.Stages.Models.Checkpoints;
using Pipeline.Stages.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.Training;

public sealed class TrainingOptimizerTests
{
    private static Sequential Net(int seed)
    {
        manual_seed(seed);
        return nn.Sequential(("conv", nn.Conv2d(3, 4, 3)), ("flat", nn.Flatten()), ("fc", nn.Linear(4 * 4 * 4, 5)));
    }

    private static void Backward(Sequential net, int step)
    {
        using var scope = NewDisposeScope();
        var g = new Generator((ulong)(1000 + step));
        var x = randn([6, 3, 6, 6], generator: g);
        var y = randint(0, 5, [6], generator: g);
        nn.functional.cross_entropy(net.forward(x), y).backward();
    }

    public static TheoryData<string> Kinds => new() { "sgd", "sgd-plain", "adam", "adamw" };

    /// <summary>Same updates as torch.optim (TorchSharp's optimizers implement its rules; used here only as the reference).</summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public void Updates_equal_torch_optim(string kind)
    {
        using var ours = Net(7);
        using var theirs = Net(7);
        var p = kind switch
        {
            "sgd" => new OptimizerParams { LearningRate = 0.05, Momentum = 0.9, Nesterov = true, WeightDecay = 1e-3 },
            "sgd-plain" => new OptimizerParams { LearningRate = 0.05, Momentum = 0, Nesterov = false, WeightDecay = 0 },
            "adam" => new OptimizerParams { Kind = OptimizerKind.Adam, LearningRate = 0.01, WeightDecay = 1e-3 },
            _ => new OptimizerParams { Kind = OptimizerKind.Adamw, LearningRate = 0.01, WeightDecay = 0.05 },
        };
        using var optimizer = new TrainingOptimizer(p, ours.parameters());
        using optim.Optimizer reference = p.Kind switch
        {
            OptimizerKind.Sgd => optim.SGD(theirs.parameters(), p.LearningRate, p.Momentum, weight_decay: p.WeightDecay, nesterov: p.Nesterov),
            OptimizerKind.Adam => optim.Adam(theirs.parameters(), p.LearningRate, p.Beta1, p.Beta2, p.Eps, p.WeightDecay),
            _ => optim.AdamW(theirs.parameters(), p.LearningRate, p.Beta1, p.Beta2, p.Eps, p.WeightDecay),
        };
        for (var step = 0; step < 6; step++)
        {
            optimizer.ZeroGrad();
            reference.zero_grad();
            Backward(ours, step);
            Backward(theirs, step);
            optimizer.Step(p.LearningRate);
            reference.step();
        }
        foreach (var ((name, a), (_, b)) in ours.named_parameters().Zip(theirs.named_parameters()))
            Assert.True(a.allclose(b, rtol: 1e-5, atol: 1e-7), $"{kind}: parameter {name} differs by {(a - b).abs().max().ToSingle()}");
        Assert.Equal(6, optimizer.Steps);
    }

    [Fact]
    public async Task Saved_state_resumes_to_the_same_updates()
    {
        var p = new OptimizerParams { Kind = OptimizerKind.Adam, LearningRate = 0.01 };
        using var net = Net(3);
        using var optimizer = new TrainingOptimizer(p, net.parameters());
        for (var step = 0; step < 3; step++) { optimizer.ZeroGrad(); Backward(net, step); optimizer.Step(0.01); }
        using var saved = new MemoryStream();
        await optimizer.SaveAsync(saved, CancellationToken.None);

        saved.Position = 0;
        var keys = Safetensors.ReadHeader(saved).Select(e => e.Name).ToHashSet();
        Assert.Contains("state.0.exp_avg", keys);
        Assert.Contains("state.3.exp_avg_sq", keys);
        Assert.Contains("step", keys);

        using var copy = Net(3);
        foreach (var ((_, a), (_, b)) in copy.named_parameters().Zip(net.named_parameters()))
        {
            using var noGrad = no_grad();
            a.copy_(b);
        }
        using var resumed = new TrainingOptimizer(p, copy.parameters());
        saved.Position = 0;
        resumed.Apply(resumed.Read(saved));
        Assert.Equal(3, resumed.Steps);
        for (var step = 3; step < 5; step++)
        {
            optimizer.ZeroGrad(); Backward(net, step); optimizer.Step(0.01);
            resumed.ZeroGrad(); Backward(copy, step); resumed.Step(0.01);
        }
        foreach (var ((name, a), (_, b)) in net.named_parameters().Zip(copy.named_parameters()))
            Assert.True(a.allclose(b, rtol: 0, atol: 0), $"parameter {name} differs after the resume");
    }

    [Fact]
    public async Task State_of_another_optimizer_or_model_is_refused_naming_the_key()
    {
        using var net = Net(3);
        using var sgd = new TrainingOptimizer(new OptimizerParams(), net.parameters());
        sgd.ZeroGrad(); Backward(net, 0); sgd.Step(0.1);
        using var saved = new MemoryStream();
        await sgd.SaveAsync(saved, CancellationToken.None);

        using var adam = new TrainingOptimizer(new OptimizerParams { Kind = OptimizerKind.Adam }, net.parameters());
        saved.Position = 0;
        Assert.Contains("state.0.momentum_buffer", Assert.Throws<InvalidDataException>(() => adam.Read(saved)).Message);

        using var other = nn.Sequential(("conv", nn.Conv2d(3, 8, 3)), ("flat", nn.Flatten()), ("fc", nn.Linear(8 * 4 * 4, 5)));
        using var wrongShapes = new TrainingOptimizer(new OptimizerParams(), other.parameters());
        saved.Position = 0;
        Assert.Contains("its parameter is", Assert.Throws<InvalidDataException>(() => wrongShapes.Read(saved)).Message);
        Assert.Equal(0, wrongShapes.Steps);
    }
}
