using Pipeline.Jobs.RunSpecs;
using Pipeline.Jobs.Configuration;

namespace Pipeline.Jobs.Tests.RunSpecs;

/// <summary>Which external paths a run launched through the web API may name (Pipeline:DataRoots).</summary>
public sealed class DataRootsTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("pipeline-data-roots-").FullName;
    private readonly string _root;
    private readonly string _outside;

    public DataRootsTests()
    {
        _root = Directory.CreateDirectory(Path.Combine(_home, "root")).FullName;
        _outside = Directory.CreateDirectory(Path.Combine(_home, "outside", "deep")).FullName;
        Directory.CreateDirectory(Path.Combine(_root, "imagenet"));
    }

    public void Dispose() => Directory.Delete(_home, recursive: true);

    private static IReadOnlyList<PlannedStage> Plan(string stagesJson) => RunSpecLoader.Load($$"""{ "name": "t", "stages": {{stagesJson}} }""").Plan;

    private static string Folder(string path) => $$"""{ "shards": { "kind": "shard", "params": { "source": { "kind": "folder", "path": "{{path}}" } } } }""";

    [Fact]
    public void A_folder_under_a_root_passes_and_one_outside_is_named_with_its_field()
    {
        var roots = new DataRoots([_root]);

        Assert.Empty(roots.Check(Plan(Folder(Path.Combine(_root, "imagenet")))));
        Assert.Empty(roots.Check(Plan(Folder(Path.Combine(_root, "not-yet-there")))));
        var error = Assert.Single(roots.Check(Plan(Folder("/etc"))));
        Assert.Equal("stages.shards.params.source.path", error.Field);
        Assert.Equal($"'/etc' is outside Pipeline:DataRoots ({_root}); put the data under a data root or add its folder to Pipeline:DataRoots", error.Message);
    }

    [Fact]
    public void A_sibling_whose_name_starts_like_the_root_is_outside() =>
        Assert.Single(new DataRoots([_root]).Check(Plan(Folder(_root + "-other"))));

    [Fact]
    public void A_symlink_inside_a_root_that_points_outside_is_refused_with_its_target()
    {
        var link = Path.Combine(_root, "escape");
        File.CreateSymbolicLink(link, _outside);

        var error = Assert.Single(new DataRoots([_root]).Check(Plan(Folder(link))));

        Assert.Contains($"resolves to '{_outside}'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dot_dot_after_a_symlink_climbs_from_its_target_as_the_kernel_does()
    {
        // root/escape → outside/deep, so root/escape/../deep is outside/deep (a lexical GetFullPath would say root/deep).
        File.CreateSymbolicLink(Path.Combine(_root, "escape"), _outside);
        Directory.CreateDirectory(Path.Combine(_root, "deep"));

        Assert.Equal(_outside, DataRoots.Resolve(Path.Combine(_root, "escape", "..", "deep")));
        Assert.Single(new DataRoots([_root]).Check(Plan(Folder(Path.Combine(_root, "escape", "..", "deep")))));
        Assert.Single(new DataRoots([_root]).Check(Plan(Folder(Path.Combine(_root, "..", "outside")))));
    }

    [Fact]
    public void A_root_that_is_itself_a_symlink_admits_what_lies_under_its_target()
    {
        var linkedRoot = Path.Combine(_home, "linked-root");
        File.CreateSymbolicLink(linkedRoot, _root);

        Assert.Empty(new DataRoots([linkedRoot]).Check(Plan(Folder(Path.Combine(_root, "imagenet")))));
        Assert.Empty(new DataRoots([_root]).Check(Plan(Folder(Path.Combine(linkedRoot, "imagenet")))));
    }

    [Fact]
    public void A_relative_path_is_refused_because_the_worker_may_resolve_it_elsewhere()
    {
        var error = Assert.Single(new DataRoots([_root]).Check(Plan(Folder("data/imagenet"))));

        Assert.Contains("relative path", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Fashion_mnist_is_checked_at_its_default_folder_and_synthetic_reads_nothing()
    {
        var plan = Plan("""{ "fm": { "kind": "shard", "params": { "source": { "kind": "fashion_mnist" } } }, "syn": { "kind": "shard" } }""");

        Assert.Empty(new DataRoots(["/usr/share/datasets"]).Check(plan));
        var error = Assert.Single(new DataRoots([_root]).Check(plan));
        Assert.Equal("stages.fm.params.source.path", error.Field);
        Assert.Contains("'/usr/share/datasets/fashion-mnist'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Neural_fit_data_and_its_images_beside_it_are_checked()
    {
        var data = Directory.CreateDirectory(Path.Combine(_root, "hvm")).FullName;
        File.CreateSymbolicLink(Path.Combine(data, "images"), _outside);
        var fit = $$"""
            {
              "train": { "kind": "train" },
              "fit": { "kind": "neural-fit", "depends_on": ["train"], "params": { "path": "{{data}}" } }
            }
            """;
        var explicitImages = $$"""
            {
              "train": { "kind": "train" },
              "fit": { "kind": "neural-fit", "depends_on": ["train"], "params": { "path": "{{data}}", "images_path": "/etc" } }
            }
            """;

        var besideIt = Assert.Single(new DataRoots([_root]).Check(Plan(fit)));
        var given = Assert.Single(new DataRoots([_root]).Check(Plan(explicitImages)));

        Assert.Equal("stages.fit.params.images_path", besideIt.Field);
        Assert.Contains($"resolves to '{_outside}'", besideIt.Message, StringComparison.Ordinal);
        Assert.Equal("stages.fit.params.images_path", given.Field);
    }

    [Fact]
    public void Unset_data_roots_default_to_debians_dataset_folder_and_a_configured_list_replaces_it()
    {
        Assert.Equal(["/usr/share/datasets"], new Pipeline.Jobs.Configuration.PipelineOptions().EffectiveDataRoots);
        Assert.Equal(["/data"], new Pipeline.Jobs.Configuration.PipelineOptions { DataRoots = ["/data"] }.EffectiveDataRoots);
    }
}
