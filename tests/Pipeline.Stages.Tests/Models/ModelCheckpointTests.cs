using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Stages.Artifacts;
using Pipeline.Stages.Models;
using Pipeline.Stages.Models.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Stages.Tests.Models;

public sealed class ModelCheckpointTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"checkpoint-tests-{Guid.NewGuid():N}");

    public ModelCheckpointTests()
    {
        torch.set_num_threads(1);
        Directory.CreateDirectory(_dir);
    }

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static readonly JsonNode SmallSpec = JsonNode.Parse("""{"model": "resnet18", "classes": 10, "width": 0.25}""")!;

    private static ResNet Small(int seed, int classes = 10, double width = 0.25)
    {
        torch.manual_seed(seed);
        return ResNet.ResNet18(classes: classes, width: width);
    }

    /// <summary>A few training-mode forwards so BN running stats and num_batches_tracked are not their initial values.</summary>
    private static void MoveRunningStats(nn.Module model, long size = 32)
    {
        model.train();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        for (var i = 0; i < 3; i++) ((nn.Module<Tensor, Tensor>)model).forward(torch.randn(4, 3, size, size) * 2 + 0.5);
        model.eval();
    }

    private static Tensor DeterministicInput(long[] shape) =>
        (torch.arange(shape.Aggregate(1L, (a, b) => a * b), dtype: ScalarType.Float32) * 0.01).sin().reshape(shape);

    [Fact]
    public async Task Save_then_load_into_a_differently_seeded_model_gives_bit_identical_outputs()
    {
        using var original = Small(seed: 1);
        MoveRunningStats(original);
        var path = Path.Combine(_dir, "model.safetensors");
        var manifest = await ModelCheckpoint.SaveAsync(original, path, SmallSpec, CancellationToken.None);

        using var restored = Small(seed: 2);
        restored.eval();
        var spec = ModelCheckpoint.Load(restored, path);

        Assert.True(JsonNode.DeepEquals(SmallSpec, spec));
        Assert.Equal(122, manifest.TensorCount);
        using var scope = torch.NewDisposeScope();
        var x = torch.randn(2, 3, 48, 48);
        Assert.True(original.forward(x).Equals(restored.forward(x)));
        var a = original.state_dict();
        var b = restored.state_dict();
        foreach (var key in new[] { "layer3.0.bn1.running_mean", "layer3.0.bn1.running_var", "layer3.0.bn1.num_batches_tracked", "fc.bias" })
            Assert.True(a[key].Equals(b[key]), key);
        Assert.Equal(3, b["bn1.num_batches_tracked"].ToInt64());
        Assert.True(restored.parameters().All(p => p.requires_grad));
    }

    [Fact]
    public async Task Sidecar_records_spec_version_count_and_sha256_and_no_temp_files_remain()
    {
        using var model = Small(seed: 3);
        var path = Path.Combine(_dir, "m.safetensors");
        var manifest = await ModelCheckpoint.SaveAsync(model, path, SmallSpec, CancellationToken.None);

        var sidecar = JsonNode.Parse(await File.ReadAllTextAsync(path + ".json"))!;
        Assert.Equal(ModelCheckpoint.FormatVersion, sidecar["format_version"]!.GetValue<int>());
        Assert.Equal(122, sidecar["tensor_count"]!.GetValue<int>());
        await using (var f = File.OpenRead(path))
            Assert.Equal(await Sha256Stream.HashAsync(f), sidecar["sha256"]!.GetValue<string>());
        Assert.Equal(manifest.Sha256, sidecar["sha256"]!.GetValue<string>());
        Assert.True(JsonNode.DeepEquals(SmallSpec, ModelCheckpoint.ReadSpec(path)));
        Assert.Equal(new[] { "m.safetensors", "m.safetensors.json" }, Directory.GetFiles(_dir).Select(Path.GetFileName).Order().ToArray());

        // Same weights → same bytes: checkpoints can be content-addressed.
        var again = await ModelCheckpoint.SaveAsync(model, Path.Combine(_dir, "again.safetensors"), SmallSpec, CancellationToken.None);
        Assert.Equal(manifest.Sha256, again.Sha256);
    }

    [Fact]
    public async Task A_missing_key_is_named()
    {
        // A ResNet state dict without 'fc.*' and with an 'extra.weight': loading it names both kinds of key.
        var partial = Path.Combine(_dir, "partial.safetensors");
        using (var m = Small(seed: 1))
        {
            var sd = m.state_dict().Where(kv => !kv.Key.StartsWith("fc.", StringComparison.Ordinal)).ToDictionary();
            sd["extra.weight"] = torch.zeros(3);
            await using var f = File.Create(partial);
            await Safetensors.WriteAsync(sd, f);
        }
        using var target = Small(seed: 2);
        await using var s = File.OpenRead(partial);
        var ex = Assert.Throws<CheckpointMismatchException>(() => ModelCheckpoint.LoadTensors(target, s));
        Assert.Equal(new[] { "fc.bias", "fc.weight" }, ex.MissingKeys);
        Assert.Equal(new[] { "extra.weight" }, ex.UnexpectedKeys);
        Assert.Contains("fc.weight", ex.Message);
        Assert.Contains("extra.weight", ex.Message);
    }

    [Fact]
    public async Task An_extra_key_is_named_and_the_model_is_left_untouched()
    {
        // A checkpoint of two Linear layers loaded into a model with only the first.
        using var two = nn.Sequential(("0", nn.Linear(4, 4)), ("1", nn.Linear(4, 2)));
        using var one = nn.Sequential(("0", nn.Linear(4, 4)));
        var pathTwo = Path.Combine(_dir, "two.safetensors");
        await ModelCheckpoint.SaveAsync(two, pathTwo, new JsonObject(), CancellationToken.None);
        using var before = one.state_dict()["0.weight"].clone();

        var ex = Assert.Throws<CheckpointMismatchException>(() => ModelCheckpoint.Load(one, pathTwo));
        Assert.Equal(new[] { "1.bias", "1.weight" }, ex.UnexpectedKeys);
        Assert.Empty(ex.MissingKeys);
        Assert.Contains("Unexpected keys: 1.bias, 1.weight", ex.Message);
        Assert.True(before.Equals(one.state_dict()["0.weight"]));
    }

    [Fact]
    public async Task A_shape_mismatch_is_named_with_both_shapes()
    {
        var path = Path.Combine(_dir, "ten.safetensors");
        using (var m = Small(seed: 1, classes: 10)) await ModelCheckpoint.SaveAsync(m, path, SmallSpec, CancellationToken.None);
        using var target = Small(seed: 1, classes: 7);
        var ex = Assert.Throws<CheckpointMismatchException>(() => ModelCheckpoint.Load(target, path));
        Assert.Equal(new[] { "fc.bias: shape [10] in the checkpoint, [7] in the model", "fc.weight: shape [10, 128] in the checkpoint, [7, 128] in the model" }, ex.Mismatched);
    }

    [Fact]
    public async Task A_dtype_mismatch_is_named()
    {
        using var f32 = nn.Linear(3, 2);
        var path = Path.Combine(_dir, "f32.safetensors");
        await ModelCheckpoint.SaveAsync(f32, path, new JsonObject(), CancellationToken.None);
        using var f64 = nn.Linear(3, 2).to(ScalarType.Float64);
        var ex = Assert.Throws<CheckpointMismatchException>(() => ModelCheckpoint.Load(f64, path));
        Assert.Contains("weight: dtype Float32 in the checkpoint, Float64 in the model", ex.Mismatched);
    }

    [Theory]
    [InlineData(4)]      // inside the length prefix
    [InlineData(100)]    // inside the JSON header
    [InlineData(-1000)]  // inside the tensor data (bytes from the end)
    public async Task A_truncated_file_gives_a_clear_error(int cut)
    {
        var path = Path.Combine(_dir, "t.safetensors");
        using (var m = Small(seed: 1)) await ModelCheckpoint.SaveAsync(m, path, SmallSpec, CancellationToken.None);
        var bytes = await File.ReadAllBytesAsync(path);
        var truncated = bytes[..(cut > 0 ? cut : bytes.Length + cut)];
        await File.WriteAllBytesAsync(path, truncated);
        using var target = Small(seed: 2);

        var withSidecar = Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.Load(target, path));
        Assert.Contains("truncated", withSidecar.Message);
        // Without a sidecar (a bare safetensors stream) the reader itself finds where the file ends.
        using var bare = new MemoryStream(truncated);
        var withoutSidecar = Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.LoadTensors(target, bare));
        Assert.Contains("truncated", withoutSidecar.Message);
    }

    [Fact]
    public async Task A_flipped_byte_in_the_data_fails_the_sha256_check_before_anything_is_copied()
    {
        var path = Path.Combine(_dir, "flip.safetensors");
        using (var m = Small(seed: 1)) await ModelCheckpoint.SaveAsync(m, path, SmallSpec, CancellationToken.None);
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[^10] ^= 0x40;
        await File.WriteAllBytesAsync(path, bytes);
        using var target = Small(seed: 2);
        using var before = target.state_dict()["fc.weight"].clone();
        Assert.Throws<ArtifactCorruptedException>(() => ModelCheckpoint.Load(target, path));
        Assert.True(before.Equals(target.state_dict()["fc.weight"]));
    }

    [Fact]
    public async Task Round_trips_through_the_artifact_store()
    {
        var store = new FileSystemArtifactStore(Path.Combine(_dir, "store"));
        using var original = Small(seed: 1);
        MoveRunningStats(original);
        await ModelCheckpoint.SaveAsync(store, "runs/r1/train-0000/model.safetensors", original, SmallSpec);
        using var restored = Small(seed: 5);
        restored.eval();
        var spec = await ModelCheckpoint.LoadAsync(store, "runs/r1/train-0000/model.safetensors", restored);
        Assert.True(JsonNode.DeepEquals(SmallSpec, spec));
        using var scope = torch.NewDisposeScope();
        var x = torch.randn(1, 3, 32, 32);
        Assert.True(original.forward(x).Equals(restored.forward(x)));
    }

    [Fact]
    public async Task Python_reads_the_file_with_json_and_numpy_into_a_torchvision_layout_ResNet18()
    {
        const string Python = "/usr/bin/python3";
        const string Install = "apt-get install -y python3-torch python3-numpy";
        Assert.True(File.Exists(Python), $"{Python} is missing; {Install}");
        var probe = await Run(Python, "-c \"import numpy, torch\"");
        Assert.True(probe.ExitCode == 0, $"python3 cannot import numpy and torch ({probe.Stderr.Trim()}); {Install}");

        using var model = Small(seed: 11, classes: 10, width: 1.0);
        MoveRunningStats(model, size: 32);
        var path = Path.Combine(_dir, "resnet18.safetensors");
        await ModelCheckpoint.SaveAsync(model, path, new JsonObject { ["model"] = "resnet18", ["classes"] = 10 }, CancellationToken.None);

        var inputShape = new long[] { 2, 3, 64, 64 };
        var expected = new JsonObject { ["classes"] = 10, ["tensor_count"] = 122, ["input_shape"] = new JsonArray(inputShape.Select(d => (JsonNode)d).ToArray()) };
        var sd = model.state_dict();
        var tensors = new JsonObject();
        foreach (var key in new[] { "conv1.weight", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked", "layer2.0.downsample.0.weight", "layer4.1.bn2.weight", "fc.weight", "fc.bias" })
        {
            var t = sd[key];
            tensors[key] = new JsonObject
            {
                ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)d).ToArray()),
                ["sum"] = t.to(ScalarType.Float64).sum().ToDouble(),
                ["first"] = t.dtype == ScalarType.Int64 ? t.flatten()[0].ToInt64() : t.flatten()[0].ToDouble(),
            };
        }
        expected["tensors"] = tensors;
        using (var scope = torch.NewDisposeScope())
        using (var noGrad = torch.no_grad())
        {
            var logits = model.forward(DeterministicInput(inputShape));
            expected["logits"] = new JsonArray(logits.flatten().data<float>().ToArray().Select(v => (JsonNode)(double)v).ToArray());
        }
        var expectedPath = Path.Combine(_dir, "expected.json");
        await File.WriteAllTextAsync(expectedPath, expected.ToJsonString());

        var script = Path.Combine(AppContext.BaseDirectory, "Models", "check_resnet18_safetensors.py");
        var result = await Run(Python, $"\"{script}\" \"{path}\" \"{expectedPath}\"");
        Assert.True(result.ExitCode == 0, $"Python check failed (exit {result.ExitCode}):\n{result.Stderr}\n{result.Stdout}");
        Assert.StartsWith("ok: 122 tensors", result.Stdout);
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> Run(string exe, string args)
    {
        var psi = new ProcessStartInfo(exe, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment["OMP_NUM_THREADS"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task The_sidecar_spec_rebuilds_the_model_before_its_weights_are_loaded()
    {
        var spec = ResNetSpec.ResNet18 with { Classes = 6, Width = 0.25, InChannels = 1 };
        torch.manual_seed(4);
        using var original = new ResNet(spec);
        original.eval();
        var path = Path.Combine(_dir, "from-spec.safetensors");
        await ModelCheckpoint.SaveAsync(original, path, JsonSerializer.SerializeToNode(spec, PipelineJson.Options)!, CancellationToken.None);

        var rebuiltSpec = ModelCheckpoint.ReadSpec(path).Deserialize<ResNetSpec>(PipelineJson.Options)!;
        using var rebuilt = new ResNet(rebuiltSpec);
        rebuilt.eval();
        ModelCheckpoint.Load(rebuilt, path);
        using var scope = torch.NewDisposeScope();
        var x = torch.randn(1, 1, 32, 32);
        Assert.True(original.forward(x).Equals(rebuilt.forward(x)));
    }
}
