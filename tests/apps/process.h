#pragma once
// Runs an app as a user would (no shell) and collects its exit status and output.
#include <QProcess>
#include <QProcessEnvironment>
#include <QStringList>

#include <string>
#include <utility>
#include <vector>

namespace sparsescope::test {

struct ProcessResult {
  int status = -1;  // exit status, or -1 if the process crashed or did not finish
  std::string out;
  std::string err;
};

inline ProcessResult run_process(const std::string& program, const std::vector<std::string>& args,
                                 const std::vector<std::pair<std::string, std::string>>& env = {}) {
  QProcess process;
  QStringList qargs;
  for (const auto& a : args) qargs << QString::fromStdString(a);
  QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
  for (const auto& [name, value] : env) environment.insert(QString::fromStdString(name), QString::fromStdString(value));
  process.setProcessEnvironment(environment);
  process.start(QString::fromStdString(program), qargs);
  ProcessResult result;
  if (!process.waitForFinished(300000)) return result;
  if (process.exitStatus() == QProcess::NormalExit) result.status = process.exitCode();
  result.out = process.readAllStandardOutput().toStdString();
  result.err = process.readAllStandardError().toStdString();
  return result;
}

}  // namespace sparsescope::test
