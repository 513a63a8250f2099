#include "run_panel.h"

#include <QComboBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLineEdit>
#include <QPushButton>
#include <QToolButton>
#include <QVBoxLayout>

#include "model_runner.h"
#include "sparsescope/vision/vit.h"

namespace sparsescope::viewer {

namespace {

void select_text(QComboBox* box, const QString& text) {
  const int i = box->findText(text);
  if (i >= 0) box->setCurrentIndex(i);
}

}  // namespace

RunPanel::RunPanel(QWidget* parent)
    : QWidget(parent),
      model_(new QComboBox(this)),
      weights_(new QLineEdit(this)),
      method_(new QComboBox(this)),
      device_(new QComboBox(this)),
      dtype_(new QComboBox(this)),
      run_(new QPushButton("Run", this)),
      run_all_(new QPushButton("Run all frames", this)),
      cancel_(new QPushButton("Cancel", this)) {
  model_->addItem("from the weights' model card", QString());
  for (const auto& name : vision::vit_config_names())
    model_->addItem(QString::fromStdString(name), QString::fromStdString(name));
  model_->setToolTip(
      "Model configuration: the one the weights file describes (models trained by sparsescope),\n"
      "or one of timm's names, which the weights must fit");
  weights_->setPlaceholderText("safetensors or .pth with timm's names");
  method_->addItems(ModelRunner::methods());
  device_->addItems(ModelRunner::devices());
  dtype_->addItems({"fp32", "fp16", "bf16"});
  run_->setToolTip("Record the attention of the current image or frame (Ctrl+R)");
  run_all_->setToolTip("Record every frame of the video (traces are kept per frame)");

  auto* browse = new QToolButton(this);
  browse->setText("...");
  browse->setToolTip("Choose a weights file");
  auto* weights_row = new QHBoxLayout;
  weights_row->addWidget(weights_, 1);
  weights_row->addWidget(browse);

  auto* form = new QFormLayout;
  form->addRow("Model", model_);
  form->addRow("Weights", weights_row);
  form->addRow("Method", method_);
  form->addRow("Device", device_);
  form->addRow("Dtype", dtype_);
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(run_);
  buttons->addWidget(run_all_);
  buttons->addWidget(cancel_);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(form);
  layout->addLayout(buttons);
  layout->addStretch(1);

  connect(browse, &QToolButton::clicked, this, [this] {
    const QString path = QFileDialog::getOpenFileName(this, "Weights", weights_->text(),
                                                      "Weights (*.safetensors *.pth *.pt *.bin);;All files (*)");
    if (path.isEmpty()) return;
    weights_->setText(path);
    select_text(method_, ModelRunner::default_method(path));
  });
  connect(weights_, &QLineEdit::editingFinished, this,
          [this] { select_text(method_, ModelRunner::default_method(weights_->text().trimmed())); });
  connect(run_, &QPushButton::clicked, this, [this] { Q_EMIT run_requested(false); });
  connect(run_all_, &QPushButton::clicked, this, [this] { Q_EMIT run_requested(true); });
  connect(cancel_, &QPushButton::clicked, this, &RunPanel::cancel_requested);
  for (QComboBox* box : {model_, method_, device_, dtype_})
    connect(box, &QComboBox::currentIndexChanged, this, &RunPanel::settings_changed);
  connect(weights_, &QLineEdit::textChanged, this, &RunPanel::settings_changed);
  set_state(false, false, false);
}

RunSettings RunPanel::settings() const {
  return {model_->currentData().toString(), weights_->text().trimmed(), method_->currentText(),
          device_->currentText(), dtype_->currentText()};
}

void RunPanel::set_settings(const RunSettings& s) {
  const int model = model_->findData(s.model);
  if (model >= 0) model_->setCurrentIndex(model);
  weights_->setText(s.weights);
  select_text(method_, s.method);
  select_text(device_, s.device);
  select_text(dtype_, s.dtype);
}

void RunPanel::set_state(bool can_run, bool is_video, bool busy) {
  run_->setEnabled(can_run && !busy);
  run_all_->setEnabled(can_run && is_video && !busy);
  cancel_->setEnabled(busy);
}

}  // namespace sparsescope::viewer
